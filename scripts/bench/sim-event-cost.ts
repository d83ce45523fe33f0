/**
 * Simulator CPU per change event: one database-level change stream with flowsync's compiled
 * pipeline (the shipped filters) reads N inserts + N updates of documents that carry private
 * fields. Prints CPU µs per event read and per write of the whole process (simulator + driver,
 * both in-process),
 * so compare two trees with the same script side by side:
 *   npx tsx scripts/bench/sim-event-cost.ts [events]
 */
import { MongoClient, type Document } from "mongodb";
import { compileFilters } from "../../src/filters/compile";
import { readFilterSpecs } from "../../src/filters/load";
import { startSimulator } from "../../src/mongo/sim";

const n = Number(process.argv[2] ?? 4000);
const sim = await startSimulator({});
const client = await new MongoClient(sim.url).connect();
const db = client.db("cost");
await db.createCollection("nodes", { changeStreamPreAndPostImages: { enabled: true } });
const filters = compileFilters(await readFilterSpecs("./filters"));
const stream = db.watch([...filters.pipeline], { fullDocument: "updateLookup", fullDocumentBeforeChange: "whenAvailable", maxAwaitTimeMS: 10 });
await stream.tryNext();
const doc = (i: number): Document => ({
  _id: i,
  flowId: `f${i % 10}`,
  type: "llm",
  position: { x: i, y: i },
  data: { label: `node ${i}`, tags: ["a", "b"] },
  secrets: { apiKey: `K${i}` },
  _internal: { v: i },
});
const w0 = process.cpuUsage();
for (let i = 0; i < n; i += 500) await db.collection<Document>("nodes").insertMany(Array.from({ length: Math.min(500, n - i) }, (_, k) => doc(i + k)));
for (let i = 0; i < n; i++) await db.collection<{ _id: number }>("nodes").updateOne({ _id: i }, { $set: { "position.x": -i, "secrets.apiKey": "changed" } });
const w = process.cpuUsage(w0);
const start = process.cpuUsage();
const t0 = performance.now();
let seen = 0;
while (seen < 2 * n) if (await stream.tryNext()) seen++;
const cpu = process.cpuUsage(start);
const ms = performance.now() - t0;
console.log(
  JSON.stringify({
    events: seen,
    cpuUsPerEvent: +((cpu.user + cpu.system) / seen).toFixed(2),
    cpuUsPerWrite: +((w.user + w.system) / (2 * n)).toFixed(2),
    wallMs: Math.round(ms),
  }),
);
await stream.close();
await client.close();
await sim.close();
