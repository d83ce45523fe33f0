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

/** `src/main.ts` in a child process, watched (runMain). */
export interface Run {
  child: ChildProcess;
  readonly stdout: string;
  readonly stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the process has exited AND its output is read to the end (stdout/stderr complete). */
  closed: Promise<{ code: number | null }>;
  /** The first JSON log line with this message. */
  logLine(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/**
 * Starts `src/main.ts` (with `args`) with only `env` (plus PATH/HOME): nothing leaks in from the
 * test runner's environment. Unlike spawnFlowsync it waits for nothing: for exits, failures and signals.
 */
export function runMain(env: Record<string, string>, args: readonly string[] = []): Run {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", ...args], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? os.tmpdir(), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding("utf8").on("data", (s: string) => {
    stdout += s;
    for (const l of listeners) l();
  });
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const closed = new Promise<{ code: number | null }>((resolve) => child.once("close", (code) => resolve({ code })));
  const find = (msg: string) =>
    stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === msg);
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
    closed,
    logLine: (msg, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const line = find(msg);
          if (!line) return;
          cleanup();
          resolve(line);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no "${msg}" log line within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
        }, timeoutMs);
        const onExit = () => {
          cleanup();
          reject(new Error(`exited before logging "${msg}"; stdout: ${stdout}; stderr: ${stderr}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off("exit", onExit);
        };
        listeners.add(check);
        child.once("exit", onExit);
        check();
      }),
  };
}
