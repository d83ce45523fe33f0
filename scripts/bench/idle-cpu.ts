/**
 * What an idle server costs: flowsync (built, defaults) and the floor (raw-server.ts) side by side on
 * ONE simulator, no subscriber, no write. Prints each process's CPU seconds over the window, the
 * ratio, and the machine's load average; with --count, what each one sent to MongoDB (commands per
 * name, bytes both ways), counted by a TCP proxy in this process. With --subscribers N, both get N
 * subscribers of one flow and --rate writes a second to it (the bench's hot-N loads, measured side by
 * side over a longer window, after the warm-up of --settle): CPU per delivery of each.
 *
 *   npx tsx scripts/bench/idle-cpu.ts [--seconds 20] [--settle 5] [--subscribers N [--rate 10]] [--build] [--count]
 *                                     [--cpu-prof] [--env NAME=VALUE]… [--dist DIR] [--node-arg=OPTION]…
 *
 * --build      rebuild artifacts/bench/dist first (as `npm run bench` does); done anyway when it is missing
 * --count      both servers reach the simulator through a counting proxy (`directConnection=true`: the
 *              driver would otherwise follow the replica set's host list around the proxy)
 * --cpu-prof   both servers run with --cpu-prof; the summaries of both profiles are printed
 * --env        extra environment for flowsync (to try a setting), repeatable
 * --dist DIR   flowsync's build to run instead of artifacts/bench/dist (e.g. another tree's, to compare)
 * --node-arg   an extra node option for flowsync (e.g. --trace-gc), repeatable
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { MongoClient } from "mongodb";
import { initDatabase, targetsFromFilters } from "../../mongo-init/init";
import { BIN, buildServers, freePort, root, startNode, usage, type Child } from "./procs";
import { summarizeProfile } from "./profile";

const { values: opts } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    settle: { type: "string", default: "5" },
    subscribers: { type: "string", default: "0" },
    rate: { type: "string", default: "10" },
    build: { type: "boolean", default: false },
    count: { type: "boolean", default: false },
    "cpu-prof": { type: "boolean", default: false },
    env: { type: "string", multiple: true, default: [] },
    dist: { type: "string" },
    "node-arg": { type: "string", multiple: true, default: [] },
  },
});
const seconds = Number(opts.seconds);
const settle = Number(opts.settle);
const subscribers = Number(opts.subscribers);
const rate = subscribers > 0 ? Number(opts.rate) : 0;
if (!(seconds > 0) || !(settle >= 0)) throw new Error("--seconds must be > 0 and --settle ≥ 0");
if (!Number.isInteger(subscribers) || subscribers < 0 || !(rate >= 0)) throw new Error("--subscribers must be an integer ≥ 0 and --rate ≥ 0");
const extraEnv = Object.fromEntries(
  opts.env.map((kv) => {
    const at = kv.indexOf("=");
    if (at <= 0) throw new Error(`--env wants NAME=VALUE, got ${JSON.stringify(kv)}`);
    return [kv.slice(0, at), kv.slice(at + 1)];
  }),
);

const ART = `${root}artifacts/bench/`;
const PROF = `${ART}idle-prof/`;
const DB = "bench";

/** What one server sent through the proxy: commands by name, and bytes each way. */
interface Traffic {
  commands: Map<string, number>;
  toServer: number;
  toClient: number;
  connections: number;
}

/** The name of the command in an OP_MSG (the first key of its body section), or the opcode. */
function commandName(msg: Buffer): string {
  const opCode = msg.readInt32LE(12);
  if (opCode !== 2013) return `opcode ${opCode}`;
  // header (16) + flagBits (4) + section kind (1) = the body document; +4 its length, +1 the first element's type.
  if (msg[20] !== 0) return "OP_MSG (sequence first)";
  const start = 26;
  const end = msg.indexOf(0, start);
  return msg.toString("utf8", start, end);
}

/** A TCP proxy to `target` that counts the commands it forwards. */
async function countingProxy(target: { host: string; port: number }, traffic: Traffic): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    traffic.connections++;
    const upstream = net.connect(target);
    sockets.add(client).add(upstream);
    let pending = Buffer.alloc(0);
    client.on("data", (chunk) => {
      traffic.toServer += chunk.length;
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 16 && pending.length >= pending.readInt32LE(0)) {
        const len = pending.readInt32LE(0);
        const name = commandName(pending.subarray(0, len));
        traffic.commands.set(name, (traffic.commands.get(name) ?? 0) + 1);
        pending = pending.subarray(len);
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      traffic.toClient += chunk.length;
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on("close", end);
      s.on("error", end);
    }
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** How often the main thread went to sleep and was woken (voluntary context switches), and its user/system CPU split. */
function wakeups(pid: number): { switches: number; user: number; system: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return {
    switches: Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0),
    user: Number(fields[11]) / 100,
    system: Number(fields[12]) / 100,
  };
}

/** CPU seconds of each thread of a process, by thread id (Linux /proc; 100 ticks a second). */
function threads(pid: number): Map<string, { name: string; cpu: number }> {
  const out = new Map<string, { name: string; cpu: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(tid, { name, cpu: (Number(fields[11]) + Number(fields[12])) / 100 });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** The threads that used CPU between two readings, busiest first: "main 0.21 s, V8Worker 0.05 s". */
function threadsUsed(a: ReturnType<typeof threads>, b: ReturnType<typeof threads>): string {
  const byName = new Map<string, number>();
  for (const [tid, t] of b) byName.set(t.name, (byName.get(t.name) ?? 0) + t.cpu - (a.get(tid)?.cpu ?? 0));
  return [...byName]
    .filter(([, cpu]) => cpu > 0)
    .sort((x, y) => y[1] - x[1])
    .map(([name, cpu]) => `${name} ${cpu.toFixed(2)} s`)
    .join(", ");
}

/** One SSE connection that counts the events (`data:` lines) it receives. */
function subscribe(url: string, counter: { events: number }, open: http.ClientRequest[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`${url}: HTTP ${res.statusCode}`));
      res.setEncoding("utf8");
      let rest = "";
      res.on("data", (chunk: string) => {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop()!;
        for (const line of lines) if (line.startsWith("data: ")) counter.events++;
      });
      res.on("error", () => {});
      resolve();
    });
    req.on("error", reject);
    open.push(req);
  });
}

function load(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");
}

async function main(): Promise<void> {
  if (opts.build || !existsSync(`${BIN}main.js`) || !existsSync(`${BIN}raw-server.js`)) buildServers();
  mkdirSync(ART, { recursive: true });
  if (opts["cpu-prof"]) {
    rmSync(PROF, { recursive: true, force: true });
    mkdirSync(`${PROF}flowsync`, { recursive: true });
    mkdirSync(`${PROF}raw`, { recursive: true });
  }
  const sim = await startNode("scripts/mongo-sim.ts", { args: ["--port", "0"], log: `${ART}idle-sim.log`, ready: /^mongodb:\/\// });
  const simUrl = new URL(sim.line.trim());
  const children: Child[] = [sim];
  const proxies: { close(): void }[] = [];
  try {
    const setup = await new MongoClient(sim.line.trim()).connect();
    await initDatabase(setup.db(DB), await targetsFromFilters(`${root}filters`));
    await setup.close();

    const traffic = { flowsync: newTraffic(), raw: newTraffic() };
    const urlFor = async (t: Traffic) => {
      if (!opts.count) return sim.line.trim();
      const proxy = await countingProxy({ host: simUrl.hostname, port: Number(simUrl.port) }, t);
      proxies.push(proxy);
      return `mongodb://127.0.0.1:${proxy.port}/?directConnection=true`;
    };
    const prof = (design: string) => (opts["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", `${PROF}${design}`] : []);

    const spawned = { flowsync: performance.now(), raw: 0 };
    const dist = opts.dist ? `${path.resolve(opts.dist)}/` : BIN;
    const flowsync = await startNode(`${dist}main.js`, {
      nodeArgs: [...prof("flowsync"), ...opts["node-arg"]],
      env: {
        MONGO_URL: await urlFor(traffic.flowsync),
        MONGO_DB: DB,
        PORT: String(await freePort()),
        HOST: "127.0.0.1",
        LOG_LEVEL: "info",
        FILTERS_DIR: `${dist}filters`,
        ...extraEnv,
      },
      log: `${ART}idle-flowsync.log`,
      ready: /"flowsync listening"/,
    });
    children.push(flowsync);
    spawned.raw = performance.now();
    const raw = await startNode(`${BIN}raw-server.js`, {
      nodeArgs: prof("raw"),
      env: { MONGO_URL: await urlFor(traffic.raw), MONGO_DB: DB, PORT: String(await freePort()) },
      log: `${ART}idle-raw.log`,
      ready: /^raw listening/,
    });
    children.push(raw);

    const received = { flowsync: { events: 0 }, raw: { events: 0 } };
    const requests: http.ClientRequest[] = [];
    const flowsyncUrl = (JSON.parse(flowsync.line) as { url: string }).url;
    const rawUrl = raw.line.replace(/^raw listening /, "").trim();
    for (let i = 0; i < subscribers; i++) {
      await subscribe(`${flowsyncUrl}/api/creative-flowboard/subscribe/idle-hot`, received.flowsync, requests);
      await subscribe(`${rawUrl}/subscribe/idle-hot`, received.raw, requests);
    }
    const writer = rate > 0 ? await new MongoClient(sim.line.trim()).connect() : undefined;
    let seq = 0;
    let stopping = false;
    const writes =
      writer &&
      setInterval(() => {
        seq++;
        writer
          .db(DB)
          .collection("nodes")
          .insertOne({
            flowId: "idle-hot",
            seq,
            type: "llm",
            position: { x: seq % 800, y: 40 },
            data: { model: "small", prompt: "Summarize the previous node's output in one line." },
          })
          .catch((err: unknown) => {
            // One still in flight when the writer closes is expected; any other failure is reported.
            if (!stopping) console.error("write failed:", err);
          });
      }, 1000 / rate);

    // Start-up work (connecting, the first aggregate, JIT) is not idle cost.
    await sleep(settle * 1000);
    const loadBefore = load();
    // Everything read at both ends of the window, the same way.
    const readings = () => ({
      f: usage(flowsync.pid),
      r: usage(raw.pid),
      s: usage(sim.pid),
      fw: wakeups(flowsync.pid),
      rw: wakeups(raw.pid),
      ft: threads(flowsync.pid),
      rt: threads(raw.pid),
      t: snapshot(traffic),
      e: { flowsync: received.flowsync.events, raw: received.raw.events },
    });
    const { f: f0, r: r0, s: s0, fw: fw0, rw: rw0, ft: ft0, rt: rt0, t: t0, e: e0 } = readings();
    const windowStart = performance.now();
    await sleep(seconds * 1000);
    const { f: f1, r: r1, s: s1, fw: fw1, rw: rw1, ft: ft1, rt: rt1, t: t1, e: e1 } = readings();

    const fs = f1.cpu - f0.cpu;
    const rs = r1.cpu - r0.cpu;
    const pct = (cpu: number) => `${((100 * cpu) / seconds).toFixed(2)} %`;
    console.log(
      `${subscribers > 0 ? `${subscribers} subscriber(s) of one flow, ${rate} writes/s,` : "idle, no subscriber,"} ${seconds} s after ${settle} s of warm-up; load average before ${loadBefore}, after ${load()}`,
    );
    console.log(`flowsync  CPU ${fs.toFixed(2)} s (${pct(fs)} of a core), RSS ${(f1.rssKB / 1024).toFixed(0)} MB`);
    console.log(`raw floor CPU ${rs.toFixed(2)} s (${pct(rs)} of a core), RSS ${(r1.rssKB / 1024).toFixed(0)} MB`);
    const woke = (a: ReturnType<typeof wakeups>, b: ReturnType<typeof wakeups>) =>
      `main thread woken ${((b.switches - a.switches) / seconds).toFixed(1)}/s, user ${(b.user - a.user).toFixed(2)} s + system ${(b.system - a.system).toFixed(2)} s`;
    if (subscribers > 0) {
      const df = e1.flowsync - e0.flowsync;
      const dr = e1.raw - e0.raw;
      const per = (cpu: number, n: number) => (n > 0 ? ((cpu * 1e6) / n).toFixed(0) : "–");
      console.log(
        `per delivery: flowsync ${per(fs, df)} µs (${df} deliveries), floor ${per(rs, dr)} µs (${dr}); ratio ${df > 0 && dr > 0 && rs > 0 ? (fs / df / (rs / dr)).toFixed(2) : "–"}×`,
      );
    }
    console.log(`flowsync  ${woke(fw0, fw1)}`);
    console.log(`raw floor ${woke(rw0, rw1)}`);
    console.log(`flowsync  threads: ${threadsUsed(ft0, ft1)}`);
    console.log(`raw floor threads: ${threadsUsed(rt0, rt1)}`);
    console.log(`ratio     ${rs > 0 ? (fs / rs).toFixed(2) : "∞"}×   (simulator: ${(s1.cpu - s0.cpu).toFixed(2)} s for both)`);
    if (opts.count) {
      for (const design of ["flowsync", "raw"] as const) {
        const a = t0[design];
        const b = t1[design];
        const names = [...new Set([...a.commands.keys(), ...b.commands.keys()])].sort();
        const per = names
          .map((n) => [n, (b.commands.get(n) ?? 0) - (a.commands.get(n) ?? 0)] as const)
          .filter(([, n]) => n > 0)
          .map(([n, c]) => `${n} ${(c / seconds).toFixed(2)}/s`);
        console.log(
          `${design.padEnd(9)} sent ${per.join(", ") || "nothing"}; ${((b.toServer - a.toServer) / seconds).toFixed(0)} B/s to MongoDB, ${((b.toClient - a.toClient) / seconds).toFixed(0)} B/s back; ${b.connections} connection(s) opened in all`,
        );
      }
    }
    clearInterval(writes);
    stopping = true;
    for (const req of requests) req.destroy();
    await writer?.close();
    await flowsync.stop();
    await raw.stop();
    if (opts["cpu-prof"]) {
      for (const design of ["flowsync", "raw"]) {
        const dir = `${PROF}${design}`;
        const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
        // The idle window only; a profile starts a little after the spawn, so its end is cut short.
        const fromUs = (windowStart - spawned[design as keyof typeof spawned]) * 1000;
        console.log(`\n### ${design}: the ${seconds} s idle window (${dir})\n`);
        console.log(summarizeProfile(dir, files, 20, { fromUs, toUs: fromUs + (seconds - 0.5) * 1e6 }).text);
      }
    }
  } finally {
    for (const p of proxies) p.close();
    for (const c of children.reverse()) await c.stop();
  }
}

function newTraffic(): Traffic {
  return { commands: new Map(), toServer: 0, toClient: 0, connections: 0 };
}

function snapshot(t: Record<"flowsync" | "raw", Traffic>): Record<"flowsync" | "raw", Traffic> {
  const copy = (x: Traffic): Traffic => ({ ...x, commands: new Map(x.commands) });
  return { flowsync: copy(t.flowsync), raw: copy(t.raw) };
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
