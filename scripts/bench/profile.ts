/**
 * Summarizes V8 `.cpuprofile` files (from `node --cpu-prof`): self time per
 * function, and total (inclusive) time of the functions that make the hot path.
 *
 *   node --import tsx scripts/bench/profile.ts artifacts/bench/prof/*.cpuprofile
 */
import { readFileSync } from "node:fs";
import path from "node:path";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  text: string;
}

/** Functions whose inclusive time shows where the hot path spends it. */
const HOT = [
  "handle",
  "publish",
  "#fanOut",
  "write",
  "formatEvent",
  "stringify",
  "mapChange",
  "next",
  "#take",
  "writeOrBuffer",
  "writev",
  "writeGeneric",
  // catch-up: flowsync's replay and the simulator's getMore
  "replayOf",
  "#catchUp",
  "catchUpChanges",
  "deserialize",
  "getMore",
  "read",
  "applyPipeline",
  "copyDeep",
  "valueKey",
  "serialize",
  "encodeOpMsg",
];

function label(n: Node): string {
  const name = n.callFrame.functionName || "(anonymous)";
  const url = n.callFrame.url;
  const file = url ? (url.includes("node_modules") ? url.slice(url.lastIndexOf("node_modules/") + 13) : path.basename(url.replace(/^file:\/\//, ""))) : "";
  return file ? `${name} (${file}:${n.callFrame.lineNumber + 1})` : name;
}

/**
 * Only the samples taken between `fromUs` and `toUs` after the earliest of the profiles started (e.g. to
 * leave start-up out). The profiles of one process's threads share one clock. `monotonic`: the two are
 * instants of the monotonic clock instead (µs; V8 stamps samples with it, as `process.hrtime` reads it, on
 * Linux), so that another process can cut out the phase it timed.
 */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
  monotonic?: boolean;
}

export function summarizeProfile(dir: string, files: string[], top = 25, window?: ProfileWindow): ProfileSummary {
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  const profiles = files.map((f) => JSON.parse(readFileSync(path.join(dir, f), "utf8")) as Profile);
  const origin = Math.min(...profiles.map((p) => p.startTime));
  for (const p of profiles) {
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const hits = new Map<number, number>();
    let at = window?.monotonic ? p.startTime : p.startTime - origin;
    p.samples.forEach((id, i) => {
      const delta = p.timeDeltas[i] ?? 0;
      at += delta;
      if (window && (at < window.fromUs || at > window.toUs)) return;
      hits.set(id, (hits.get(id) ?? 0) + delta);
    });
    for (const [id, us] of hits) {
      const node = byId.get(id)!;
      total += us;
      if (node.callFrame.functionName === "(idle)") idle += us;
      const name = label(node);
      self.set(name, (self.get(name) ?? 0) + us);
      // Inclusive: every distinct function on the stack gets the sample once.
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const fn = byId.get(cur)!.callFrame.functionName;
        if (HOT.includes(fn) && !seen.has(fn)) {
          seen.add(fn);
          inclusive.set(fn, (inclusive.get(fn) ?? 0) + us);
        }
      }
    }
  }
  const busy = total - idle;
  const pc = (us: number) => `${((100 * us) / busy).toFixed(1)} %`;
  const ms = (us: number) => `${(us / 1000).toFixed(1)} ms`;
  const rows = [...self]
    .filter(([n]) => !n.startsWith("(idle)"))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top);
  const text = [
    `${files.length} profile(s), ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(window ? 3 : 1)} s busy (percentages are of busy time).`,
    "",
    "| self time | | function |",
    "| ---: | ---: | --- |",
    ...rows.map(([n, us]) => `| ${pc(us)} | ${ms(us)} | \`${n}\` |`),
    "",
    "Inclusive time of hot-path functions (a function counted once per sample, wherever it sits on the stack):",
    "",
    "| inclusive | | function |",
    "| ---: | ---: | --- |",
    ...HOT.filter((h) => inclusive.has(h)).map((h) => `| ${pc(inclusive.get(h)!)} | ${ms(inclusive.get(h)!)} | \`${h}\` |`),
  ].join("\n");
  return { text };
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: node --import tsx scripts/bench/profile.ts <file.cpuprofile>…");
    process.exit(2);
  }
  console.log(
    summarizeProfile(
      "",
      files.map((f) => path.resolve(f)),
    ).text,
  );
}
