/**
 * What one idle SSE connection retains in flowsync, by kind of heap object: a heap snapshot of a
 * flowsync process before and after N idle subscribers connect, diffed and divided by N.
 *
 *   npx tsx scripts/bench/heap-per-connection.ts [N=2000] [--dist]
 *
 * Runs the simulator and flowsync (`src/main.ts`) as child processes; the snapshots are taken with
 * `--heapsnapshot-signal` (written to artifacts/bench/heap/). Self sizes only: what each kind of
 * object costs itself, not what it keeps alive.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, root, startNode, usage } from "./procs";

const N = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 2000);
const dir = `${root}artifacts/bench/heap/`;
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
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
// `--dist`: the built service (`npm run build`), as the Dockerfile runs it; default: the source under tsx.
const dist = process.argv.includes("--dist");
const fs = await startNode(dist ? "dist/main.js" : "src/main.ts", {
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
  log: `${dir}flowsync.log`,
  ready: /"flowsync listening"/,
});
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const requests: http.ClientRequest[] = [];
try {
  await sleep(1000);
  const a = await snapshot(fs.pid, "before");
  const rss0 = usage(fs.pid).rssKB;
  await Promise.all(
    Array.from(
      { length: N },
      (_, i) =>
        new Promise<void>((resolve, reject) => {
          const req = http.get(`http://127.0.0.1:${port}/api/creative-flowboard/subscribe/heap-${i % 10}`, { agent }, (res) => {
            res.once("data", () => resolve());
          });
          req.on("error", reject);
          requests.push(req);
        }),
    ),
  );
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
    `\n${N} idle connections: heap +${(total / 1024).toFixed(2)} KB per connection (self sizes), RSS +${((rss1 - rss0) / N).toFixed(1)} KB per connection\n`,
  );
  console.log("| bytes per connection | objects per connection | kind |\n| ---: | ---: | --- |");
  for (const r of rows.slice(0, 30)) console.log(`| ${r.size.toFixed(0)} | ${r.count.toFixed(2)} | \`${r.k}\` |`);
} finally {
  for (const r of requests) r.destroy();
  agent.destroy();
  await fs.stop();
  await sim.stop();
}
