/**
 * `npm run bench`: flowsync against the naive design (one change stream per
 * subscriber), three kinds of process measured apart:
 *
 *   backend    the simulator (`scripts/mongo-sim.ts`, what `npm run mongo:sim` runs), or --mongo-url
 *   server     flowsync (`src/main.ts`) or the naive server (`naive-server.ts`), one at a time
 *   load       this process (writes through its own MongoClient, watches a baseline change stream)
 *              + forked loadgen.ts workers holding the SSE connections (≤ WORKER_MAX each: fd limit)
 *
 * Writes BENCHMARKS.md (everything below the notes marker is kept across runs) and
 * artifacts/bench/results.json. Options: --mongo-url URL, --out FILE, --cpu-prof, --only a,b,
 * --seconds N (writes per fan-out run; default 5).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { execSync } from "node:child_process";
import { MongoClient, type ChangeStream, type Db } from "mongodb";
import { initDatabase, targetsFromFilters } from "../../mongo-init/init";
import { BIN, buildServers, fdLimit, freePort, machineBusy, percentile, resetPeakRss, root, startNode, usage, Worker, type Child } from "./procs";
import { summarizeProfile } from "./profile";
import { renderReport, type Results, type Run } from "./report";
import { squashError } from "../../src/errors";

const { values: opts } = parseArgs({
  options: {
    "mongo-url": { type: "string" },
    out: { type: "string", default: "BENCHMARKS.md" },
    "cpu-prof": { type: "boolean", default: false },
    only: { type: "string" },
    seconds: { type: "string" },
  },
});
const only = opts.only ? new Set(opts.only.split(",")) : undefined;
const wanted = (name: string) => !only || only.has(name);

const DB = "bench";
const HOT_RATE = 10; // writes/s, one at a time ("trickle"): 100,000 deliveries/s at 10,000 subscribers
const SPREAD_RATE = 200; // writes/s over 1,000 flows
const WRITE_SECONDS = Number(opts.seconds ?? 5);
const DRAIN_MS = 5_000; // after the last write: longer than that is "behind"
const CONNECT_BUDGET_MS = 30_000; // opening the subscribers: longer is "hopeless" (6 ms per subscriber past 5,000)
const PROBES = 200;
const ART = `${root}artifacts/bench/`;
mkdirSync(ART, { recursive: true });
// --cpu-prof: flowsync's profiles and the backend's (the simulator) in separate folders.
const PROF = { server: `${ART}prof`, backend: `${ART}prof-backend` };
const profArgs = (dir: string) => (opts["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", dir] : []);
/** The monotonic clock in µs: the one V8 stamps profile samples with (Linux), to cut a phase out of a profile. */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);

const now = () => performance.timeOrigin + performance.now();
const started = Date.now();
const log = (msg: string) => console.log(`[bench +${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}`);

// ---- the backend, and the load generator's own view of it -------------------------------------

interface Backend {
  url: string;
  child?: Child;
  client: MongoClient;
  db: Db;
  /** Arrival time of each seq on this process's own change stream: the backend's share of the latency. */
  baseline: Map<number, number>;
  stream: ChangeStream;
  stop(): Promise<void>;
}

async function startBackend(label: string): Promise<Backend> {
  let child: Child | undefined;
  let url: string;
  if (opts["mongo-url"]) {
    url = opts["mongo-url"];
  } else {
    const sim = await startNode("scripts/mongo-sim.ts", {
      args: ["--port", "0", "--oplog-size", "2000000"],
      nodeArgs: profArgs(PROF.backend),
      log: `${ART}${label}.log`,
      ready: /^mongodb:\/\//,
    });
    child = sim;
    url = sim.line.trim();
  }
  const client = new MongoClient(url, { maxPoolSize: 20 });
  await client.connect();
  const db = client.db(DB);
  if (opts["mongo-url"]) await db.dropDatabase();
  await initDatabase(db, await targetsFromFilters(`${root}filters`));
  const baseline = new Map<number, number>();
  const stream = db.collection("nodes").watch([{ $match: { operationType: "insert" } }, { $project: { "fullDocument.seq": 1 } }]);
  stream.on("change", (c) => {
    const seq = (c as { fullDocument?: { seq?: number } }).fullDocument?.seq;
    if (typeof seq === "number") baseline.set(seq, now());
  });
  stream.on("error", () => {});
  await sleep(300); // the stream's aggregate is sent asynchronously
  return {
    url,
    child,
    client,
    db,
    baseline,
    stream,
    stop: async () => {
      await stream.close().catch(squashError);
      await client.close();
      await child?.stop();
    },
  };
}

// ---- servers --------------------------------------------------------------------------------------

interface Server {
  design: "flowsync" | "naive" | "raw" | "batch";
  base: string;
  subscribeBase: string;
  child: Child;
}

async function startFlowsync(backend: Backend, extraEnv: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const child = await startNode(`${BIN}main.js`, {
    nodeArgs: profArgs(PROF.server),
    env: { MONGO_URL: backend.url, MONGO_DB: DB, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info", FILTERS_DIR: `${BIN}filters`, ...extraEnv },
    log: `${ART}flowsync.log`,
    ready: /"flowsync listening"/,
  });
  const base = `http://127.0.0.1:${port}`;
  return { design: "flowsync", base, subscribeBase: `${base}/api/creative-flowboard/subscribe/`, child };
}

async function startNaive(backend: Backend): Promise<Server> {
  const port = await freePort();
  const child = await startNode(`${BIN}naive-server.js`, {
    env: { MONGO_URL: backend.url, MONGO_DB: DB, PORT: String(port) },
    log: `${ART}naive.log`,
    ready: /^naive listening/,
  });
  const base = `http://127.0.0.1:${port}`;
  return { design: "naive", base, subscribeBase: `${base}/subscribe/`, child };
}

/** The floor: one write per event per response ("raw"), or one pre-built Buffer per tick's burst ("batch"). */
async function startRaw(backend: Backend, design: "raw" | "batch" = "raw"): Promise<Server> {
  const port = await freePort();
  const child = await startNode(`${BIN}raw-server.js`, {
    env: { MONGO_URL: backend.url, MONGO_DB: DB, PORT: String(port), RAW_COALESCE: design === "batch" ? "1" : "0" },
    log: `${ART}${design}.log`,
    ready: /^raw listening/,
  });
  const base = `http://127.0.0.1:${port}`;
  return { design, base, subscribeBase: `${base}/subscribe/`, child };
}

async function scrape(server: Server): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (server.design !== "flowsync") return out;
  let text = "";
  for (let attempt = 1; ; attempt++) {
    try {
      text = await (await fetch(`${server.base}/metrics`)).text();
      break;
    } catch (err) {
      // A kept-alive connection the server closed meanwhile (or a full accept queue): try again.
      if (attempt === 5) throw err;
      await sleep(200 * attempt);
    }
  }
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

// ---- the load generator's workers ---------------------------------------------------------------

const WORKER_MAX = Math.min(9_500, fdLimit() - 500);
const workers: Worker[] = [];

async function workersFor(connections: number): Promise<Worker[]> {
  const n = Math.max(1, Math.ceil(connections / WORKER_MAX));
  while (workers.length < n) workers.push(new Worker());
  return workers.slice(0, n);
}

interface Opened {
  used: Worker[];
  opened: number;
  connectMs: number;
  timedOut: boolean;
}

/** Opens one SSE connection per entry of `flowIds`, spread over as few workers as the fd limit allows. */
async function openSubscribers(server: Server, flowIds: string[]): Promise<Opened> {
  const used = await workersFor(flowIds.length);
  const per = Math.ceil(flowIds.length / used.length);
  const probeEvery = Math.max(1, Math.floor(flowIds.length / PROBES));
  const t0 = now();
  const all = Promise.all(
    used.map((w, k) =>
      w.request<{ opened: number }>({
        cmd: "open",
        url: server.subscribeBase,
        flowIds: flowIds.slice(k * per, (k + 1) * per),
        probeEvery,
        localAddress: `127.0.0.${2 + k}`,
      }),
    ),
  );
  const budget = connectBudget(flowIds.length);
  const result = await Promise.race([all, sleep(budget).then(() => undefined)]);
  if (!result) {
    const opened = (await Promise.all(used.map((w) => w.stats()))).reduce((n, s) => n + s.open, 0);
    return { used, opened, connectMs: now() - t0, timedOut: true };
  }
  return { used, opened: result.reduce((n, r) => n + r.opened, 0), connectMs: now() - t0, timedOut: false };
}

function connectBudget(subscribers: number): number {
  return Math.max(CONNECT_BUDGET_MS, 6 * subscribers);
}

async function closeSubscribers(server: Server, used: Worker[]): Promise<void> {
  await Promise.all(used.map((w) => w.request({ cmd: "close" })));
  if (server.design === "flowsync") {
    for (let i = 0; i < 100 && ((await scrape(server)).get("flowsync_subscribers") ?? 0) > 0; i++) await sleep(100);
  } else {
    await sleep(1000);
  }
}

// ---- one fan-out run --------------------------------------------------------------------------------

let seq = 0;
const t0BySeq = new Map<number, number>();

interface Load {
  name: string;
  kind: "hot" | "hot20" | "spread" | "trickle-max" | "burst" | "idle";
  subscribers: number;
  flows: number;
  /** Batches per second, each of `batch` documents (insertMany when > 1). */
  rate: number;
  batch: number;
  seconds: number;
  drainMs?: number;
}

function doc(flowId: string) {
  const s = ++seq;
  const t0 = now();
  t0BySeq.set(s, t0);
  return {
    flowId,
    seq: s,
    t0,
    type: "llm",
    position: { x: s % 800, y: 40 },
    data: { model: "small", prompt: "Summarize the previous node's output in one line." },
  };
}

async function write(backend: Backend, load: Load, flowIds: string[]): Promise<{ written: number; expected: number; writeMs: number }> {
  const nodes = backend.db.collection("nodes");
  const audience = new Map<string, number>();
  for (const f of flowIds) audience.set(f, (audience.get(f) ?? 0) + 1);
  const flows = [...new Set(flowIds)];
  const batches = Math.max(1, Math.round(load.rate * load.seconds));
  let written = 0;
  let expected = 0;
  const inflight: Promise<unknown>[] = [];
  const start = now();
  for (let b = 0; b < batches; b++) {
    const due = start + (b * 1000) / load.rate;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    const docs = Array.from({ length: load.batch }, () => doc(flows[(seq + 1) % flows.length]!));
    for (const d of docs) expected += audience.get(d.flowId) ?? 0;
    written += docs.length;
    inflight.push(docs.length === 1 ? nodes.insertOne(docs[0]!) : nodes.insertMany(docs, { ordered: true }));
  }
  await Promise.all(inflight);
  return { written, expected, writeMs: now() - start };
}

async function fanOut(backend: Backend, server: Server, load: Load): Promise<Run> {
  const flowIds = Array.from({ length: load.subscribers }, (_, i) => (load.flows === 1 ? `${load.name}-hot` : `${load.name}-f${i % load.flows}`));
  const idleBefore = usage(server.child.pid);
  const opened = await openSubscribers(server, flowIds);
  await sleep(1000);
  const idle = usage(server.child.pid);
  const run: Run = {
    name: load.name,
    kind: load.kind,
    design: server.design,
    subscribers: load.subscribers,
    flows: load.flows,
    rate: load.rate,
    batch: load.batch,
    opened: opened.opened,
    connectMs: opened.connectMs,
    idleRssKB: idle.rssKB,
    rssBeforeKB: idleBefore.rssKB,
  };
  if (opened.timedOut || opened.opened < load.subscribers) {
    run.stopped = `only ${opened.opened} of ${load.subscribers} subscribers connected within ${connectBudget(load.subscribers) / 1000} s`;
    await closeSubscribers(server, opened.used);
    return run;
  }
  await Promise.all(opened.used.map((w) => w.request({ cmd: "reset" })));
  const m0 = await scrape(server);
  // Peak RSS of this run only (not of the runs before it on the same process).
  resetPeakRss(server.child.pid);
  const u0 = usage(server.child.pid);
  const b0 = backend.child ? usage(backend.child.pid) : undefined;
  const l0 = opened.used.map((w) => usage(w.proc.pid!));
  const self0 = process.cpuUsage();
  const busy0 = machineBusy();
  const bytes0 = (await Promise.all(opened.used.map((w) => w.stats()))).reduce((n, s) => n + s.bytes, 0);
  const tStart = now();
  const { written, expected, writeMs } = await write(backend, load, flowIds);
  // Drain: until every delivery arrived, or DRAIN_MS after the last write.
  let delivered = 0;
  let bytes = 0;
  let tEnd = now();
  const deadline = now() + (load.drainMs ?? DRAIN_MS);
  for (;;) {
    const stats = await Promise.all(opened.used.map((w) => w.stats()));
    delivered = stats.reduce((n, s) => n + s.events, 0);
    bytes = stats.reduce((n, s) => n + s.bytes, 0) - bytes0;
    tEnd = now();
    if (delivered >= expected || tEnd > deadline) break;
    await sleep(50);
  }
  const u1 = usage(server.child.pid);
  const b1 = backend.child ? usage(backend.child.pid) : undefined;
  const l1 = opened.used.map((w) => usage(w.proc.pid!));
  const self1 = process.cpuUsage(self0);
  const busy1 = machineBusy();
  const m1 = await scrape(server);
  const samples = (await Promise.all(opened.used.map((w) => w.stats(true)))).flatMap((s) => s.samples ?? []);
  const e2e: number[] = [];
  const added: number[] = [];
  for (const [s, at] of samples) {
    const t0 = t0BySeq.get(s);
    if (t0 !== undefined) e2e.push(at - t0);
    const base = backend.baseline.get(s);
    if (base !== undefined) added.push(at - base);
  }
  e2e.sort((a, b) => a - b);
  added.sort((a, b) => a - b);
  const seconds = (tEnd - tStart) / 1000;
  Object.assign(run, {
    written,
    expected,
    delivered,
    writeMs,
    seconds,
    deliveriesPerSec: delivered / seconds,
    // What the subscribers had to read per event: their side of the machine's work grows with it.
    bytesPerDelivery: delivered > 0 ? bytes / delivered : undefined,
    e2e: { p50: percentile(e2e, 50), p99: percentile(e2e, 99), max: e2e.at(-1) ?? Number.NaN, n: e2e.length },
    added: { p50: percentile(added, 50), p99: percentile(added, 99), max: added.at(-1) ?? Number.NaN, n: added.length },
    serverCpuPct: ((u1.cpu - u0.cpu) / seconds) * 100,
    backendCpuPct: b0 && b1 ? ((b1.cpu - b0.cpu) / seconds) * 100 : undefined,
    loadCpuPct: ((l1.reduce((n, u) => n + u.cpu, 0) - l0.reduce((n, u) => n + u.cpu, 0) + (self1.user + self1.system) / 1e6) / seconds) * 100,
    serverCpuUsPerDelivery: delivered > 0 ? ((u1.cpu - u0.cpu) * 1e6) / delivered : undefined,
    // Everything else the machine ran meanwhile (other sessions' tests share these cores).
    otherCpuPct:
      ((busy1 -
        busy0 -
        (u1.cpu - u0.cpu) -
        (b0 && b1 ? b1.cpu - b0.cpu : 0) -
        (l1.reduce((n, u) => n + u.cpu, 0) - l0.reduce((n, u) => n + u.cpu, 0)) -
        (self1.user + self1.system) / 1e6) /
        seconds) *
      100,
    rssKB: u1.rssKB,
    peakRssKB: u1.peakRssKB,
    dropped: (m1.get("flowsync_slow_clients_dropped_total") ?? 0) - (m0.get("flowsync_slow_clients_dropped_total") ?? 0),
  } satisfies Partial<Run>);
  if (delivered < expected) {
    run.stopped = `behind: ${delivered.toLocaleString("en-US")} of ${expected.toLocaleString("en-US")} deliveries (${((100 * delivered) / expected).toFixed(1)} %) ${((load.drainMs ?? DRAIN_MS) / 1000).toFixed(0)} s after the last write`;
  }
  await closeSubscribers(server, opened.used);
  return run;
}

// ---- catch-up ------------------------------------------------------------------------------------

/** Reads one SSE stream until `expect` events arrived; resolves with the time from request to the last one. */
async function readBacklog(
  url: string,
  lastEventId: string | undefined,
  expect: number,
  timeoutMs = 60_000,
): Promise<{ events: number; ms: number; lastId?: string }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const start = now();
  let events = 0;
  let lastId: string | undefined;
  let buf = "";
  try {
    const res = await fetch(url, { signal: ac.signal, headers: lastEventId ? { "Last-Event-ID": lastEventId } : {} });
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const id = /^id: (.*)$/m.exec(frame)?.[1];
        if (id !== undefined) lastId = id;
        if (/^data: /m.test(frame)) events++;
      }
      if (events >= expect) break;
    }
  } catch {
    // aborted: report what arrived
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return { events, ms: now() - start, lastId };
}

async function catchUp(backend: Backend, server: Server, behind: number): Promise<Results["catchUp"]> {
  const url = `${server.subscribeBase}catchup`;
  const nodes = backend.db.collection("nodes");
  // A cursor: the id of one event, read live.
  const first = readBacklog(url, undefined, 1);
  await sleep(300);
  await nodes.insertOne(doc("catchup"));
  const { lastId: cursor } = await first;
  if (!cursor) throw new Error("catch-up: no cursor");
  // `behind` more events for the flow, then wait until flowsync has read them all.
  const m0 = await scrape(server);
  for (let i = 0; i < behind; i += 1000) await nodes.insertMany(Array.from({ length: Math.min(1000, behind - i) }, () => doc("catchup")));
  for (
    let i = 0;
    i < 600 && ((await scrape(server)).get("flowsync_changes_received_total") ?? 0) < (m0.get("flowsync_changes_received_total") ?? 0) + behind;
    i++
  )
    await sleep(100);
  const backendCpu = () => (backend.child ? usage(backend.child.pid).cpu : Number.NaN);
  const u0 = usage(server.child.pid);
  const bk0 = backendCpu();
  const memory = await readBacklog(url, cursor, behind);
  const bk1 = backendCpu();
  const m1 = await scrape(server);
  // One more event elsewhere pushes the oldest of them out of the replay buffer (REPLAY_BUFFER_SIZE = behind).
  await nodes.insertOne(doc("catchup-evict"));
  await sleep(500);
  const u1 = usage(server.child.pid);
  const bk2 = backendCpu();
  const t0 = monoUs();
  const mongo = await readBacklog(url, cursor, behind);
  const window: [number, number] = [t0, monoUs()];
  const u2 = usage(server.child.pid);
  const bk3 = backendCpu();
  const m2 = await scrape(server);
  const replayed = (m: Map<string, number>, source: string) => m.get(`flowsync_replays_total{source="${source}"}`) ?? 0;
  return {
    behind,
    memory: { ...memory, cpuSec: u1.cpu - u0.cpu, backendCpuSec: bk1 - bk0, served: replayed(m1, "memory") - replayed(m0, "memory") },
    mongodb: { ...mongo, cpuSec: u2.cpu - u1.cpu, backendCpuSec: bk3 - bk2, served: replayed(m2, "mongodb") - replayed(m1, "mongodb"), window },
  };
}

// ---- the run ------------------------------------------------------------------------------------

const HOT: Load[] = [1, 100, 1_000, 10_000].map((s) => ({
  name: `hot-${s}`,
  kind: "hot",
  subscribers: s,
  flows: 1,
  rate: HOT_RATE,
  batch: 1,
  seconds: WRITE_SECONDS,
}));
const SPREAD: Load[] = [1_000, 10_000].map((s) => ({
  name: `spread-${s}`,
  kind: "spread",
  subscribers: s,
  flows: 1_000,
  rate: SPREAD_RATE,
  batch: 1,
  seconds: WRITE_SECONDS,
}));
const HOT20: Load = { name: "hot20-10000", kind: "hot20", subscribers: 10_000, flows: 1, rate: 2 * HOT_RATE, batch: 1, seconds: WRITE_SECONDS };
const TRICKLE: Load = { name: "trickle-max", kind: "trickle-max", subscribers: 10_000, flows: 1, rate: 60, batch: 1, seconds: 4, drainMs: 10_000 };
const BURST: Load = { name: "burst", kind: "burst", subscribers: 10_000, flows: 1, rate: 5, batch: 100, seconds: 1, drainMs: 20_000 };

async function main(): Promise<void> {
  const results: Results = {
    command: `npm run bench${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    startedAt: new Date().toISOString(),
    machine: machine(),
    backend: opts["mongo-url"] ? "MONGO_URL" : "simulator (scripts/mongo-sim.ts)",
    constants: { HOT_RATE, SPREAD_RATE, WRITE_SECONDS, DRAIN_MS, CONNECT_BUDGET_MS, PROBES, WORKER_MAX },
    runs: [],
  };
  const save = () => writeFileSync(`${ART}results.json`, JSON.stringify(results, null, 2));
  // A profile summary covers this run's profiles only.
  if (opts["cpu-prof"]) for (const dir of Object.values(PROF)) rmSync(dir, { recursive: true, force: true });
  buildServers();
  const backend = await startBackend("sim-flowsync");
  log(`backend ${backend.url}; workers hold ≤ ${WORKER_MAX} connections each (fd limit ${fdLimit()})`);
  let fs = await startFlowsync(backend);
  try {
    for (const load of [...HOT, HOT20, ...SPREAD, TRICKLE, BURST]) {
      if (!wanted(load.name)) continue;
      log(`flowsync ${load.name}`);
      results.runs.push(await fanOut(backend, fs, load));
      save();
    }
    if (wanted("idle")) {
      // As many idle subscribers as one process may hold (fd limit), then one event to all of them.
      const n = Math.min(19_000, fdLimit() - 500);
      log(`flowsync idle-${n}`);
      await fs.child.stop();
      fs = await startFlowsync(backend);
      await sleep(1000);
      results.runs.push(await fanOut(backend, fs, { name: "idle", kind: "idle", subscribers: n, flows: 1, rate: 1, batch: 1, seconds: 1, drainMs: 10_000 }));
      save();
    }
    if (wanted("catchup")) {
      log("flowsync catch-up 10,000 behind");
      await fs.child.stop();
      fs = await startFlowsync(backend, { REPLAY_BUFFER_SIZE: "10000" });
      results.catchUp = await catchUp(backend, fs, 10_000);
      save();
    }
  } finally {
    await fs.child.stop();
    await backend.stop();
  }
  if (opts["cpu-prof"]) {
    const profiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
    results.profile = summarizeProfile(PROF.server, profiles(PROF.server));
    if (!opts["mongo-url"]) results.backendProfile = summarizeProfile(PROF.backend, profiles(PROF.backend));
    const times = results.catchUp?.mongodb.window;
    if (times) {
      const window = { fromUs: times[0], toUs: times[1], monotonic: true };
      results.catchUpProfile = {
        server: summarizeProfile(PROF.server, profiles(PROF.server), 25, window),
        backend: opts["mongo-url"] ? undefined : summarizeProfile(PROF.backend, profiles(PROF.backend), 25, window),
      };
    }
  }

  // The floors: one change stream + bare res.write fan-out (raw: each event; batch: each tick's burst as one
  // pre-built Buffer), each run on a fresh backend.
  const floors: Array<["raw" | "batch", Load]> = [
    ...[...HOT, HOT20].map((l) => ["raw", l] as ["raw", Load]),
    ["raw", BURST],
    ["batch", BURST],
    ["batch", HOT20],
  ];
  for (const [design, load] of floors) {
    if (!wanted(`${design}-${load.name}`) && !wanted(design)) continue;
    log(`${design} ${load.name}`);
    const rb = await startBackend(`sim-${design}`);
    const raw = await startRaw(rb, design);
    try {
      results.runs.push(await fanOut(rb, raw, load));
    } finally {
      await raw.child.stop();
      await rb.stop();
    }
    save();
  }

  // The naive design, same loads, each on a fresh backend (its cursors must not slow the next run).
  const hopeless = new Set<string>();
  for (const load of [...HOT, ...SPREAD]) {
    if (!wanted(`naive-${load.name}`) && !wanted("naive")) continue;
    if (hopeless.has(load.kind)) {
      results.runs.push({
        name: load.name,
        kind: load.kind,
        design: "naive",
        subscribers: load.subscribers,
        flows: load.flows,
        rate: load.rate,
        batch: load.batch,
        opened: 0,
        connectMs: 0,
        idleRssKB: 0,
        rssBeforeKB: 0,
        stopped: "not run: already hopelessly behind with fewer subscribers",
      });
      continue;
    }
    log(`naive ${load.name}`);
    const nb = await startBackend("sim-naive");
    const naive = await startNaive(nb);
    try {
      const run = await fanOut(nb, naive, load);
      results.runs.push(run);
      if (run.stopped && (run.delivered === undefined || run.delivered < 0.5 * (run.expected ?? 1))) hopeless.add(load.kind);
    } finally {
      await naive.child.stop();
      await nb.stop();
    }
    save();
  }
  await Promise.all(workers.map((w) => w.stop()));
  results.finishedAt = new Date().toISOString();
  save();
  const previous = (() => {
    try {
      return readFileSync(path.resolve(root, opts.out!), "utf8");
    } catch {
      return "";
    }
  })();
  writeFileSync(path.resolve(root, opts.out!), renderReport(results, previous));
  log(`wrote ${opts.out} and artifacts/bench/results.json in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

function machine(): Results["machine"] {
  const cpus = os.cpus();
  let commit = "";
  try {
    commit = execSync("git rev-parse --short HEAD", { cwd: root }).toString().trim();
  } catch {
    // not a git checkout
  }
  return {
    cpu: cpus[0]?.model ?? "?",
    cores: cpus.length,
    memGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel: os.release(),
    fdLimit: fdLimit(),
    commit,
  };
}

main().then(
  () => process.exit(0),
  async (err) => {
    console.error(err);
    await Promise.all(workers.map((w) => w.stop()));
    process.exit(1);
  },
);
