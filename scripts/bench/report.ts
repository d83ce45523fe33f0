/** BENCHMARKS.md from the results of one `npm run bench`; the notes below NOTES_MARKER are kept across runs. */
import type { ProfileSummary } from "./profile";

export interface Latency {
  p50: number;
  p99: number;
  max: number;
  n: number;
}

export interface Run {
  name: string;
  kind: "hot" | "hot20" | "spread" | "trickle-max" | "burst" | "idle";
  design: "flowsync" | "naive" | "raw" | "batch";
  subscribers: number;
  flows: number;
  rate: number;
  batch: number;
  opened: number;
  connectMs: number;
  rssBeforeKB: number;
  idleRssKB: number;
  written?: number;
  expected?: number;
  delivered?: number;
  writeMs?: number;
  seconds?: number;
  deliveriesPerSec?: number;
  e2e?: Latency;
  added?: Latency;
  serverCpuPct?: number;
  backendCpuPct?: number;
  loadCpuPct?: number;
  serverCpuUsPerDelivery?: number;
  /** Bytes the subscribers read per event (frames, heartbeats, chunk framing), from the load generator's count. */
  bytesPerDelivery?: number;
  otherCpuPct?: number;
  rssKB?: number;
  peakRssKB?: number;
  dropped?: number;
  stopped?: string;
}

interface Backlog {
  events: number;
  ms: number;
  cpuSec: number;
  /** CPU of the backend process meanwhile (the simulator); NaN with --mongo-url. */
  backendCpuSec: number;
  served: number;
  /** When it was read, in µs of the monotonic clock (to cut this phase out of --cpu-prof profiles). */
  window?: [number, number];
}

export interface Results {
  command: string;
  startedAt: string;
  finishedAt?: string;
  machine: { cpu: string; cores: number; memGB: number; node: string; kernel: string; fdLimit: number; commit: string };
  backend: string;
  constants: Record<string, number>;
  runs: Run[];
  catchUp?: { behind: number; memory: Backlog; mongodb: Backlog };
  profile?: ProfileSummary;
  /** --cpu-prof of the backend process (the simulator). */
  backendProfile?: ProfileSummary;
  /** --cpu-prof of both processes, only the samples taken during the catch-up from MongoDB. */
  catchUpProfile?: { server: ProfileSummary; backend?: ProfileSummary };
}

export const NOTES_MARKER = "<!-- Everything below this line is kept when `npm run bench` rewrites the file. -->";

const int = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? "–" : Math.round(n).toLocaleString("en-US"));
const ms = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? "–" : n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString("en-US"));
const mb = (kb: number | undefined) => (kb === undefined ? "–" : (kb / 1024).toFixed(0));
const sec = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(2));
const pct = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? "–" : `${Math.round(n)} %`);

function fanOutTable(runs: Run[]): string {
  const head =
    "| design | subscribers | flows | written | delivered | deliveries/s | write→client p50 / p99 / max (ms) | added by the server p50 / p99 (ms) | server CPU | server CPU per delivery (µs) | server RSS (MB) | backend CPU | load CPU | other processes' CPU | connect (s) |\n" +
    "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |";
  const rows = runs.map((r) => {
    if (r.stopped && r.delivered === undefined)
      return `| ${r.design} | ${int(r.subscribers)} | ${int(r.flows)} | | | | **stopped**: ${r.stopped} | | | | ${r.idleRssKB ? mb(r.idleRssKB) : "–"} | | | | ${r.connectMs ? (r.connectMs / 1000).toFixed(1) : "–"} |`;
    const lat = `${ms(r.e2e?.p50)} / ${ms(r.e2e?.p99)} / ${ms(r.e2e?.max)}`;
    const stop = r.stopped ? ` **${r.stopped}**` : "";
    return `| ${r.design} | ${int(r.subscribers)} | ${int(r.flows)} | ${int(r.written)} | ${int(r.delivered)} | ${int(r.deliveriesPerSec)} | ${lat}${stop} | ${ms(r.added?.p50)} / ${ms(r.added?.p99)} | ${pct(r.serverCpuPct)} | ${ms(r.serverCpuUsPerDelivery)} | ${mb(r.rssKB)} | ${pct(r.backendCpuPct)} | ${pct(r.loadCpuPct)} | ${pct(r.otherCpuPct)} | ${(r.connectMs / 1000).toFixed(1)} |`;
  });
  return `${head}\n${rows.join("\n")}`;
}

function ratios(results: Results, kind: Run["kind"]): string[] {
  const out: string[] = [];
  for (const fs of results.runs.filter((r) => r.kind === kind && r.design === "flowsync")) {
    const raw = results.runs.find((r) => r.name === fs.name && r.design === "raw");
    if (!raw || raw.serverCpuUsPerDelivery === undefined || fs.serverCpuUsPerDelivery === undefined) continue;
    out.push(
      `- ${int(fs.subscribers)} subscriber(s), flowsync against the floor (raw): CPU per delivery ${ms(fs.serverCpuUsPerDelivery)} vs ${ms(raw.serverCpuUsPerDelivery)} µs (${(fs.serverCpuUsPerDelivery / raw.serverCpuUsPerDelivery).toFixed(2)}×), write→client p99 ${ms(fs.e2e?.p99)} vs ${ms(raw.e2e?.p99)} ms, RSS with the subscribers idle ${mb(fs.idleRssKB)} vs ${mb(raw.idleRssKB)} MB.`,
    );
  }
  for (const fs of results.runs.filter((r) => r.kind === kind && r.design === "flowsync")) {
    const naive = results.runs.find((r) => r.name === fs.name && r.design === "naive");
    if (!naive) continue;
    const what = `${int(fs.subscribers)} subscriber(s) on ${fs.flows === 1 ? "one flow" : `${int(fs.flows)} flows`}`;
    if (naive.stopped && naive.delivered === undefined) {
      out.push(
        `- ${what}: naive **stopped** (${naive.stopped}); flowsync delivered ${int(fs.delivered)} of ${int(fs.expected)} with p99 ${ms(fs.e2e?.p99)} ms.`,
      );
      continue;
    }
    const p99 = (naive.e2e?.p99 ?? Number.NaN) / (fs.e2e?.p99 ?? Number.NaN);
    const cpu = (naive.serverCpuPct ?? Number.NaN) / (fs.serverCpuPct ?? Number.NaN);
    const bcpu = (naive.backendCpuPct ?? Number.NaN) / (fs.backendCpuPct ?? Number.NaN);
    const rate = (fs.deliveriesPerSec ?? Number.NaN) / (naive.deliveriesPerSec ?? Number.NaN);
    const f = (x: number) => (Number.isFinite(x) ? `${x >= 10 ? Math.round(x) : x.toFixed(1)}×` : "–");
    out.push(
      `- ${what}: naive/flowsync p99 latency **${f(p99)}**, server CPU ${f(cpu)}, backend CPU ${f(bcpu)}; flowsync/naive deliveries/s ${f(rate)}` +
        (naive.stopped ? `; naive ${naive.stopped}` : ""),
    );
  }
  return out;
}

export function renderReport(r: Results, previous: string): string {
  const runs = (kind: Run["kind"]) => r.runs.filter((x) => x.kind === kind);
  const fs = (name: string) => r.runs.find((x) => x.name === name && x.design === "flowsync");
  const idle = fs("idle");
  const perIdleKB = idle && idle.opened > 0 ? (idle.idleRssKB - idle.rssBeforeKB) / idle.opened : Number.NaN;
  const trickle = fs("trickle-max");
  const burst = fs("burst");
  const c = r.constants;
  const m = r.machine;
  const cu = r.catchUp;
  const targets = targetRows(r);
  const notes = previous.includes(NOTES_MARKER)
    ? previous.slice(previous.indexOf(NOTES_MARKER) + NOTES_MARKER.length).replace(/^\n+/, "")
    : "## Notes\n\n(none yet)\n";
  return `# Benchmarks

Generated by \`npm run bench\` (scripts/bench/); the tables above the notes marker are rewritten by every run.

- **Command:** \`${r.command}\` — run ${r.startedAt} → ${r.finishedAt ?? "?"}, commit \`${m.commit}\`
- **Machine:** ${m.cores} × ${m.cpu}, ${m.memGB} GB RAM, Linux ${m.kernel}, Node ${m.node}, open-files limit ${int(m.fdLimit)}
- **Processes:** backend = ${r.backend}; server = flowsync (\`node main.js\` as \`scripts/build.ts\` builds it, defaults), the naive server (\`naive-server.ts\`: one change stream per subscriber) or a floor (\`raw-server.ts\`: one change stream and a bare \`res.write\` of each change to every response, nothing else; *batch*: each tick's frames of a flow as one pre-built Buffer), every server built to JavaScript first and run without a TypeScript loader; load = the bench process (writes through its own MongoClient, and watches its own change stream as the baseline) + forked workers holding the SSE connections (≤ ${int(c.WORKER_MAX)} each). All share the ${m.cores} cores: CPU columns are per process, 100 % = one core.
- **Latency:** *write→client* = arrival at a subscriber − the writer's clock just before \`insertOne\`; *added by the server* = arrival at a subscriber − arrival of the same change on the load generator's own change stream (what the backend's change stream costs is subtracted). Sampled on ${c.PROBES} probe connections spread evenly over the fan-out order; every connection counts its events.
- **Loads:** one hot flow at ${c.HOT_RATE} writes/s, or subscribers spread round-robin over 1,000 flows at ${c.SPREAD_RATE} writes/s; ${c.WRITE_SECONDS} s of writes, then up to ${c.DRAIN_MS! / 1000} s to deliver; *behind* = not everything arrived by then. Subscribers that take over ${c.CONNECT_BUDGET_MS! / 1000} s to connect stop a run.

## Targets

Each target is a ratio to a floor measured in the same run on the same machine: *raw* = one change stream and a bare
\`res.write\` of each event to every response; *batch* = the same, but each tick's frames of a flow joined into one
pre-built Buffer written to every response (the coalescing floor). Other processes' CPU during each run is in the tables below.

| target | wanted | measured | |
| --- | --- | --- | --- |
${targets.map(([what, want, got, ok]) => `| ${what} | ${want} | ${got} | ${ok === undefined ? "not run" : ok ? "met" : "**missed**"} |`).join("\n")}

## One hot flow (${c.HOT_RATE} writes/s)

${fanOutTable(runs("hot"))}

${ratios(r, "hot").join("\n")}

## Spread over 1,000 flows (${c.SPREAD_RATE} writes/s)

${fanOutTable(runs("spread"))}

${ratios(r, "spread").join("\n")}

## One hot flow at ${2 * c.HOT_RATE!} writes/s, 10,000 subscribers

${fanOutTable(runs("hot20"))}

${ratios(r, "hot20").join("\n")}

## Throughput at 10,000 subscribers on one flow

${fanOutTable([...runs("trickle-max"), ...runs("burst")])}

- *trickle*: ${trickle ? `${int(trickle.rate)} single inserts/s for ${trickle.written ? (trickle.written / trickle.rate).toFixed(0) : "?"} s` : "not run"}; *burst*: ${burst ? `${burst.batch}-document \`insertMany\` batches, ${burst.rate}/s` : "not run"}. deliveries/s = events counted by all connections ÷ (last write → last delivery).${bytesLine([...runs("trickle-max"), ...runs("burst")])}

## Idle subscribers and memory

${idle ? `${int(idle.opened)} subscribers on one flow (${idle.opened >= 19_000 ? "one flowsync process" : "as many as the fd limit allows"}): flowsync RSS ${mb(idle.rssBeforeKB)} MB before, ${mb(idle.idleRssKB)} MB with all of them connected and idle ⇒ **${perIdleKB.toFixed(1)} KB per idle subscriber**. Connecting them took ${(idle.connectMs / 1000).toFixed(1)} s. Then one event: ${int(idle.delivered)} of ${int(idle.expected)} received it, write→client p50 / p99 / max ${ms(idle.e2e?.p50)} / ${ms(idle.e2e?.p99)} / ${ms(idle.e2e?.max)} ms.` : "not run"}

## Catch-up of a subscriber ${cu ? int(cu.behind) : "10,000"} events behind

${
  cu
    ? `| served from | events | time (ms) | events/s | flowsync CPU (s) | backend CPU (s) | counted by /metrics |
| --- | ---: | ---: | ---: | ---: | ---: | --- |
| memory (replay buffer) | ${int(cu.memory.events)} | ${ms(cu.memory.ms)} | ${int(cu.memory.events / (cu.memory.ms / 1000))} | ${cu.memory.cpuSec.toFixed(2)} | ${sec(cu.memory.backendCpuSec)} | replays{source="memory"} +${cu.memory.served} |
| MongoDB (catch-up change stream) | ${int(cu.mongodb.events)} | ${ms(cu.mongodb.ms)} | ${int(cu.mongodb.events / (cu.mongodb.ms / 1000))} | ${cu.mongodb.cpuSec.toFixed(2)} | ${sec(cu.mongodb.backendCpuSec)} | replays{source="mongodb"} +${cu.mongodb.served} |

Time = from the request to the ${int(cu.behind)}th event, read by one \`fetch\` client. flowsync ran with \`REPLAY_BUFFER_SIZE=${cu.behind}\`; one more write elsewhere then pushed the oldest of them out of memory, so the same cursor had to be served from MongoDB.`
    : "not run"
}
${r.profile ? `\n## CPU profile of flowsync during this run (\`--cpu-prof\`)\n\n${r.profile.text}\n` : ""}${r.backendProfile ? `\n## CPU profile of the backend (simulator) during this run (\`--cpu-prof\`)\n\n${r.backendProfile.text}\n` : ""}${
    r.catchUpProfile
      ? `\n## CPU profiles of the catch-up from MongoDB alone (\`--cpu-prof\`, samples taken while it ran)\n\nflowsync:\n\n${r.catchUpProfile.server.text}\n${r.catchUpProfile.backend ? `\nbackend (simulator):\n\n${r.catchUpProfile.backend.text}\n` : ""}`
      : ""
  }
${NOTES_MARKER}

${notes}`;
}

type Target = [what: string, wanted: string, measured: string, met: boolean | undefined];

const x = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : "–");

/** The Targets table: every row a ratio of flowsync to a floor run in the same `npm run bench`. */
function targetRows(r: Results): Target[] {
  const find = (name: string, design: Run["design"]) => r.runs.find((x) => x.name === name && x.design === design);
  const rows: Target[] = [];
  const burst = find("burst", "flowsync");
  const burstFloor = find("burst", "batch");
  if (burst && burstFloor) {
    const rate = (burst.deliveriesPerSec ?? 0) / (burstFloor.deliveriesPerSec ?? Number.NaN);
    const growth = ((burst.peakRssKB ?? 0) - burst.idleRssKB) / ((burstFloor.peakRssKB ?? 0) - burstFloor.idleRssKB);
    rows.push([
      "bursts (100-document insertMany, 5/s) to 10,000 subscribers: deliveries/s",
      "≥ 0.8× batch floor",
      `${int(burst.deliveriesPerSec)} vs ${int(burstFloor.deliveriesPerSec)}/s = ${x(rate)}`,
      rate >= 0.8,
    ]);
    rows.push([
      "bursts: RSS growth during the burst (peak − idle)",
      "≤ 1.5× batch floor",
      `${mb((burst.peakRssKB ?? 0) - burst.idleRssKB)} vs ${mb((burstFloor.peakRssKB ?? 0) - burstFloor.idleRssKB)} MB = ${x(growth)}`,
      growth <= 1.5,
    ]);
  }
  for (const name of ["hot-10000", "hot20-10000"]) {
    const fs = find(name, "flowsync");
    const raw = find(name, "raw");
    if (!fs || !raw) continue;
    const ratio = (fs.added?.p99 ?? Number.NaN) / (raw.added?.p99 ?? Number.NaN);
    const all = fs.delivered === fs.expected;
    rows.push([
      `10,000 subscribers on one flow at ${fs.rate} writes/s: p99 added latency, every event delivered`,
      "≤ 0.5× raw floor",
      `${ms(fs.added?.p99)} vs ${ms(raw.added?.p99)} ms = ${x(ratio)}; delivered ${int(fs.delivered)} of ${int(fs.expected)}`,
      ratio <= 0.5 && all,
    ]);
  }
  for (const n of [1, 100, 1_000, 10_000]) {
    const fs = find(`hot-${n}`, "flowsync");
    const raw = find(`hot-${n}`, "raw");
    if (!fs?.serverCpuUsPerDelivery || !raw?.serverCpuUsPerDelivery) continue;
    const ratio = fs.serverCpuUsPerDelivery / raw.serverCpuUsPerDelivery;
    rows.push([
      `CPU per delivery, ${int(n)} subscriber(s)`,
      "≤ 1.2× raw floor",
      `${ms(fs.serverCpuUsPerDelivery)} vs ${ms(raw.serverCpuUsPerDelivery)} µs = ${x(ratio)}`,
      ratio <= 1.2,
    ]);
  }
  const fs10k = find("hot-10000", "flowsync");
  const raw10k = find("hot-10000", "raw");
  if (fs10k && raw10k && fs10k.opened > 0 && raw10k.opened > 0) {
    const per = (run: Run) => (run.idleRssKB - run.rssBeforeKB) / run.opened;
    const ratio = per(fs10k) / per(raw10k);
    rows.push([
      "idle RSS per subscriber (10,000 connected)",
      "≤ 1.3× raw floor",
      `${per(fs10k).toFixed(1)} vs ${per(raw10k).toFixed(1)} KB = ${x(ratio)}`,
      ratio <= 1.3,
    ]);
  }
  const cu = r.catchUp;
  if (cu) {
    const rate = cu.mongodb.events / (cu.mongodb.ms / 1000);
    rows.push([
      `catch-up of ${int(cu.behind)} events from MongoDB`,
      "≥ 20,000 events/s",
      `${int(rate)} events/s (from memory: ${int(cu.memory.events / (cu.memory.ms / 1000))})`,
      rate >= 20_000,
    ]);
  }
  const idle = find("idle", "flowsync");
  if (idle) {
    rows.push([
      "concurrent subscribers in one process",
      "19,000",
      `${int(idle.opened)} connected, ${int(idle.delivered)} of ${int(idle.expected)} got the event (p99 ${ms(idle.e2e?.p99)} ms)`,
      idle.opened >= 19_000 && idle.delivered === idle.expected,
    ]);
  }
  return rows;
}

/** Bytes read per delivery in each run that measured them (the load generator parses every byte). */
function bytesLine(list: Run[]): string {
  const parts = list.filter((x) => x.bytesPerDelivery !== undefined).map((x) => `${x.design} ${x.kind} ${Math.round(x.bytesPerDelivery!)} B`);
  return parts.length > 0 ? ` Bytes the subscribers read per delivery (chunk framing and heartbeats included): ${parts.join(", ")}.` : "";
}
