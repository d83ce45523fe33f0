/** Process plumbing for the benchmark: start/stop children, read their CPU and memory, talk to workers. */
import { execSync, fork, spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { WorkerRequest, WorkerStats } from "./loadgen";

export const root = fileURLToPath(new URL("../../", import.meta.url));
const CLK_TCK = 100; // getconf CLK_TCK on Linux/x86-64

// Every server runs as built JavaScript, as users deploy flowsync (`npm run build`, the Dockerfile): a
// TypeScript loader in the process costs memory per connection (tsx keeps function names with a
// property on every closure: 2 KB per idle connection, scripts/bench/heap-per-connection.ts).
export const BIN = `${root}artifacts/bench/dist/`;

/** Builds flowsync (scripts/build.ts) and the bench's own servers into BIN. */
export function buildServers(): void {
  execSync(`node --import tsx scripts/build.ts --outdir ${BIN}`, { cwd: root, stdio: "inherit" });
  for (const name of ["raw-server", "naive-server"]) {
    execSync(
      `npx esbuild scripts/bench/${name}.ts --bundle --platform=node --format=esm --target=node20 --packages=external --log-level=warning --outfile=${BIN}${name}.js`,
      { cwd: root, stdio: "inherit" },
    );
  }
}

export interface Usage {
  /** CPU seconds (user + system) since the process started. */
  cpu: number;
  rssKB: number;
  peakRssKB: number;
}

/** CPU time and memory of a process, from /proc (Linux). */
export function usage(pid: number): Usage {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpu = (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
  return { cpu, rssKB: kb("VmRSS"), peakRssKB: kb("VmHWM") };
}

/**
 * Resets a process's peak RSS (VmHWM) to its current RSS, so that the next `usage()` reports the
 * peak of what ran in between (Linux: `echo 5 > /proc/PID/clear_refs`). False if not allowed.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** CPU seconds the whole machine spent busy (all cores, all processes), from /proc/stat. */
export function machineBusy(): number {
  const [, ...v] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
  const n = v.map(Number);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  return (total - n[3]! - n[4]!) / CLK_TCK;
}

/** Soft limit of open files of this process (children inherit it). */
export function fdLimit(): number {
  const line = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
  return line ? Number(line[1]) : 1024;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts `node --import tsx <script>`; resolves with the first stdout line matching `ready`. */
export async function startNode(
  script: string,
  opts: { args?: string[]; env?: NodeJS.ProcessEnv; nodeArgs?: string[]; log: string; ready: RegExp; timeoutMs?: number },
): Promise<Child & { line: string }> {
  // Built JavaScript (dist/) runs as users run it: no TypeScript loader in the process.
  const loader = script.endsWith(".js") ? [] : ["--import", "tsx"];
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...loader, script, ...(opts.args ?? [])], {
    cwd: root,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = createWriteStream(opts.log);
  proc.stderr!.pipe(log);
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready after ${opts.timeoutMs ?? 30_000} ms (see ${opts.log})`)), opts.timeoutMs ?? 30_000);
    const lines = createInterface({ input: proc.stdout! });
    lines.on("line", (l) => {
      log.write(`${l}\n`);
      if (opts.ready.test(l)) {
        clearTimeout(timer);
        resolve(l);
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}) before it was ready (see ${opts.log})`));
    });
  });
  return { proc, pid: proc.pid!, line, stop: () => stopChild(proc) };
}

export function stopChild(proc: ChildProcess, graceMs = 10_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    proc.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    proc.kill("SIGTERM");
  });
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/** A forked load-generator worker (loadgen.ts), driven by request/response over IPC. */
export class Worker {
  readonly proc: ChildProcess;
  #next = 1;
  #pending = new Map<number, Pending>();

  constructor() {
    this.proc = fork(`${root}scripts/bench/loadgen.ts`, [], { execArgv: ["--import", "tsx"], cwd: root, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.proc.on("message", (msg: { id: number; result?: unknown; error?: string }) => {
      const p = this.#pending.get(msg.id);
      if (!p) return; // the answer to a request we stopped waiting for
      this.#pending.delete(msg.id);
      if (msg.error) p.reject(new Error(msg.error));
      else p.resolve(msg.result);
    });
  }

  request<T>(req: DistributiveOmit<WorkerRequest, "id">): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ ...req, id });
    });
  }

  stats(samples = false): Promise<WorkerStats> {
    return this.request<WorkerStats>({ cmd: "stats", samples });
  }

  stop(): Promise<void> {
    return stopChild(this.proc, 2000);
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}
