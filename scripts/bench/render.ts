/** Re-renders BENCHMARKS.md from artifacts/bench/results.json (the last run), keeping the notes. */
import { readFileSync, writeFileSync } from "node:fs";
import { root } from "./procs";
import { renderReport, type Results } from "./report";

const results = JSON.parse(readFileSync(`${root}artifacts/bench/results.json`, "utf8")) as Results;
const out = `${root}${process.argv[2] ?? "BENCHMARKS.md"}`;
let previous = "";
try {
  previous = readFileSync(out, "utf8");
} catch {
  // first time
}
writeFileSync(out, renderReport(results, previous));
console.log(`rendered ${out}`);
