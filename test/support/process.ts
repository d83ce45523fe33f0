/**
 * flowsync as operators run it, in a child process (`node --import tsx
 * src/main.ts`), for tests that need a real second process or a real restart.
 */
import { spawn, type ChildProcess } from "node:child_process";
import os from "node:os";

export interface FlowsyncProcess {
  readonly child: ChildProcess;
  /** The HTTP base URL, from its "flowsync listening" log line. */
  readonly url: string;
  readonly stdout: () => string;
  /** SIGTERM, then waits for the exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `src/main.ts` with only `env` (plus PATH/HOME) and waits until it listens. */
export async function spawnFlowsync(env: Record<string, string>, timeoutMs = 30_000): Promise<FlowsyncProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? os.tmpdir(), PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`flowsync did not listen within ${timeoutMs} ms; stdout: ${out}; stderr: ${err}`)), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`flowsync exited (${code}) before listening; stdout: ${out}; stderr: ${err}`));
    });
    child.stdout!.setEncoding("utf8").on("data", (s: string) => {
      out += s;
      const line = out
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { msg?: string; url?: string })
        .find((l) => l.msg === "flowsync listening");
      if (line?.url) {
        clearTimeout(timer);
        resolve(line.url);
      }
    });
  });
  let stopping: Promise<number | null> | undefined;
  return {
    child,
    url,
    stdout: () => out,
    stop: () => {
      stopping ??= child.exitCode !== null ? Promise.resolve(child.exitCode) : (child.kill("SIGTERM"), exited);
      return stopping;
    },
  };
}
