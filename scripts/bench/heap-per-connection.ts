/**
 * What one idle SSE connection retains in flowsync, by kind of heap object: a heap snapshot of a
 * flowsync process before and after N idle subscribers connect, diffed and divided by N.
 *
 *   npx tsx scripts/bench/heap-per-connection.ts [N=2000] [--dist | --raw] [--retainers]
 *
 * Runs the simulator and flowsync (`src/main.ts`) as child processes; the snapshots are taken with
 * `--heapsnapshot-signal` (written to artifacts/bench/heap/). Self sizes only: what each kind of
 * object costs itself, not what it keeps alive.
 *
 * `--retainers`: then, for the objects that are new in the second snapshot, what holds them
 * (per connection: the holder's kind and the edge, for the largest kinds), which variables each
 * kind of closure captures, and how many Koa contexts are still alive. Koa's context, request
 * and response are plain objects (`Object.create`); they are told apart by their properties.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, root, startNode, usage } from "./procs";

const N = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 2000);
const dir = `${root}artifacts/bench/heap/`;
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Self size and count per "type:name" (constructor name for objects). */
function byKind(file: string): Map<string, { size: number; count: number }> {
  const snap = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [ti, ni, si] = ["type", "name", "self_size"].map((f) => fields.indexOf(f)) as [number, number, number];
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + ti]!]!;
    const name = type === "object" || type === "closure" ? snap.strings[snap.nodes[i + ni]!]! : "";
    const key = `${type}${name ? `:${name}` : ""}`;
    const e = out.get(key) ?? { size: 0, count: 0 };
    e.size += snap.nodes[i + si]!;
    e.count++;
    out.set(key, e);
  }
  return out;
}

/** The ids of a snapshot's objects (ids are stable across the snapshots of one process). */
function idsOf(file: string): Set<number> {
  const snap = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const idi = fields.indexOf("id");
  const ids = new Set<number>();
  for (let i = idi; i < snap.nodes.length; i += fields.length) ids.add(snap.nodes[i]!);
  return ids;
}

/** Koa's context, request and response by their own properties (they are plain objects). */
function koaKind(props: ReadonlySet<string>): string | undefined {
  if (!props.has("app") || !props.has("req") || !props.has("res")) return undefined;
  if (props.has("request") && props.has("response") && props.has("state")) return "koa context";
  if (props.has("ctx") && props.has("response")) return "koa request";
  if (props.has("ctx") && props.has("request")) return "koa response";
  return undefined;
}

/** What holds the objects that are new in `after` (see the module comment); per connection. */
function retainers(beforeFile: string, afterFile: string, n: number): void {
  const old = idsOf(beforeFile);
  const snap = JSON.parse(readFileSync(afterFile, "utf8")) as Snapshot;
  const { node_fields: nf, edge_fields: ef, node_types, edge_types } = snap.snapshot.meta;
  const [NF, EF] = [nf.length, ef.length];
  const [ti, ni, idi, si, eci] = ["type", "name", "id", "self_size", "edge_count"].map((f) => nf.indexOf(f)) as number[] as [
    number,
    number,
    number,
    number,
    number,
  ];
  const [eti, eni, eto] = ["type", "name_or_index", "to_node"].map((f) => ef.indexOf(f)) as [number, number, number];
  const { nodes, edges, strings } = snap;
  const count = nodes.length / NF;
  const first = new Uint32Array(count + 1);
  for (let i = 0, e = 0; i < count; i++) {
    first[i] = e;
    e += nodes[i * NF + eci]! * EF;
  }
  first[count] = edges.length;
  const type = (i: number) => node_types[0][nodes[i * NF + ti]!]!;
  const edgeType = (e: number) => edge_types[0][edges[e + eti]!]!;
  const edgeName = (e: number) => {
    const t = edgeType(e);
    return t === "element" ? "[]" : t === "hidden" ? "(hidden)" : strings[edges[e + eni]!]!;
  };
  const props = (i: number) => {
    const out = new Set<string>();
    for (let e = first[i]!; e < first[i + 1]!; e += EF) if (edgeType(e) === "property") out.add(strings[edges[e + eni]!]!);
    return out;
  };
  const kinds: string[] = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    const t = type(i);
    const name = t === "object" || t === "closure" ? strings[nodes[i * NF + ni]!]! : "";
    kinds[i] = name === "Object" ? (koaKind(props(i)) ?? "object:Object") : `${t}${name ? `:${name}` : ""}`;
  }
  const fresh = new Uint8Array(count);
  const sizeOf = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    if (old.has(nodes[i * NF + idi]!)) continue;
    fresh[i] = 1;
    sizeOf.set(kinds[i]!, (sizeOf.get(kinds[i]!) ?? 0) + nodes[i * NF + si]!);
  }
  const top = new Set(
    [...sizeOf]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 14)
      .map(([k]) => k),
  );
  for (const k of ["koa context", "koa request", "koa response"]) top.add(k);
  const held = new Map<string, Map<string, number>>();
  const captured = new Map<string, number>();
  let contexts = 0;
  for (let i = 0; i < count; i++) {
    if (kinds[i] === "koa context") contexts++;
    for (let e = first[i]!; e < first[i + 1]!; e += EF) {
      const to = edges[e + eto]! / NF;
      if (!fresh[to] || edgeType(e) === "weak" || !top.has(kinds[to]!)) continue;
      const by = held.get(kinds[to]!) ?? new Map<string, number>();
      const key = `${kinds[i]} .${edgeName(e)}`;
      by.set(key, (by.get(key) ?? 0) + 1);
      held.set(kinds[to]!, by);
    }
    if (fresh[i] && type(i) === "closure") {
      const vars: string[] = [];
      for (let e = first[i]!; e < first[i + 1]!; e += EF) {
        if (edgeName(e) !== "context") continue;
        const c = edges[e + eto]! / NF;
        for (let f = first[c]!; f < first[c + 1]!; f += EF) if (edgeType(f) === "context") vars.push(edgeName(f));
      }
      const key = `${kinds[i]} ⟨${vars.join(", ")}⟩`;
      captured.set(key, (captured.get(key) ?? 0) + 1);
    }
  }
  console.log(`\nKoa contexts alive: ${contexts} (${(contexts / n).toFixed(2)} per connection)`);
  console.log("\nWhat holds the new objects (per connection; holder kind .edge), largest kinds first:\n");
  for (const [k] of [...sizeOf].filter(([k]) => top.has(k)).sort((a, b) => b[1] - a[1])) {
    const by = [...(held.get(k) ?? [])].sort((a, b) => b[1] - a[1]).filter(([, c]) => c / n >= 0.05);
    console.log(
      `- \`${k}\` (${((sizeOf.get(k) ?? 0) / n).toFixed(0)} B): ${by
        .slice(0, 8)
        .map(([h, c]) => `${h} ×${(c / n).toFixed(2)}`)
        .join("; ")}`,
    );
  }
  console.log("\nNew closures per connection, with the variables their context captures:\n");
  for (const [k, c] of [...captured].sort((a, b) => b[1] - a[1]).filter(([, c]) => c / n >= 0.05)) console.log(`- ${(c / n).toFixed(2)} × ${k}`);
}

async function snapshot(pid: number, label: string): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 600; i++) {
    await sleep(100);
    const fresh = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith(".heapsnapshot"));
    if (fresh.length > 0) {
      const file = `${dir}${fresh[0]}`;
      // Done when its size stops changing (the process writes it while paused).
      for (let last = -1, size = statSync(file).size; size !== last || size === 0; last = size, size = statSync(file).size) await sleep(1000);
      console.log(`${label}: ${fresh[0]}`);
      return file;
    }
  }
  throw new Error("no heap snapshot");
}

const sim = await startNode("scripts/mongo-sim.ts", { args: ["--port", "0"], log: `${dir}sim.log`, ready: /^mongodb:\/\// });
const port = await freePort();
// `--raw`: the floor (raw-server.ts) instead, built to JavaScript as the bench runs it.
const raw = process.argv.includes("--raw");
// `--dist`: the built service (`npm run build`), as the Dockerfile runs it; default: the source under tsx.
const dist = process.argv.includes("--dist");
if (raw) {
  execFileSync(
    "npx",
    [
      "esbuild",
      "scripts/bench/raw-server.ts",
      "--bundle",
      "--platform=node",
      "--format=esm",
      "--target=node20",
      "--packages=external",
      "--log-level=warning",
      `--outfile=${dir}raw-server.js`,
    ],
    { cwd: root, stdio: "inherit" },
  );
}
const fs = await startNode(raw ? `${dir}raw-server.js` : dist ? "dist/main.js" : "src/main.ts", {
  nodeArgs: ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${dir}`],
  env: {
    MONGO_URL: sim.line.trim(),
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    LOG_FORMAT: "json",
    MAX_SUBSCRIBERS: "0",
    ...(dist ? { FILTERS_DIR: "dist/filters" } : {}),
  },
  log: `${dir}${raw ? "raw" : "flowsync"}.log`,
  ready: raw ? /^raw listening/ : /"flowsync listening"/,
});
const subscribePath = raw ? "/subscribe/" : "/api/creative-flowboard/subscribe/";
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const requests: http.ClientRequest[] = [];
try {
  await sleep(1000);
  const a = await snapshot(fs.pid, "before");
  const { rssKB: rss0, cpu: cpu0 } = usage(fs.pid);
  await Promise.all(
    Array.from(
      { length: N },
      (_, i) =>
        new Promise<void>((resolve, reject) => {
          const req = http.get(`http://127.0.0.1:${port}${subscribePath}heap-${i % 10}`, { agent }, (res) => {
            res.once("data", () => resolve());
          });
          req.on("error", reject);
          requests.push(req);
        }),
    ),
  );
  // The server's CPU for opening the connections (handshakes), before the idle wait.
  const cpu1 = usage(fs.pid).cpu;
  await sleep(2000);
  const rss1 = usage(fs.pid).rssKB;
  const b = await snapshot(fs.pid, "after");
  const [ka, kb] = [byKind(a), byKind(b)];
  const rows = [...kb]
    .map(([k, v]) => ({ k, size: (v.size - (ka.get(k)?.size ?? 0)) / N, count: (v.count - (ka.get(k)?.count ?? 0)) / N }))
    .filter((r) => r.size > 8);
  rows.sort((x, y) => y.size - x.size);
  const total = rows.reduce((n, r) => n + r.size, 0);
  console.log(
    `\n${N} idle connections: heap +${(total / 1024).toFixed(2)} KB per connection (self sizes), RSS +${((rss1 - rss0) / N).toFixed(1)} KB per connection, server CPU ${(((cpu1 - cpu0) * 1e6) / N).toFixed(0)} µs per connection opened\n`,
  );
  console.log("| bytes per connection | objects per connection | kind |\n| ---: | ---: | --- |");
  for (const r of rows.slice(0, 30)) console.log(`| ${r.size.toFixed(0)} | ${r.count.toFixed(2)} | \`${r.k}\` |`);
  if (process.argv.includes("--retainers")) retainers(a, b, N);
} finally {
  for (const r of requests) r.destroy();
  agent.destroy();
  await fs.stop();
  await sim.stop();
}
