/**
 * Edits flowboard data the way outside tools do (n8n, a script, mongosh): plain
 * driver writes, no flowsync code. Watch them arrive with
 *   curl -N http://127.0.0.1:3000/api/creative-flowboard/subscribe/demo-flow
 *
 * Usage: npm run demo:writer -- <mongoUrl> [--flow demo-flow] [--db flowboard] [--count 20] [--interval-ms 500]
 */
import { parseArgs } from "node:util";
import { MongoClient } from "mongodb";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    flow: { type: "string", default: "demo-flow" },
    db: { type: "string", default: "flowboard" },
    count: { type: "string", default: "20" },
    "interval-ms": { type: "string", default: "500" },
  },
});
const url = positionals[0] ?? process.env.MONGO_URL;
if (!url) {
  console.error("usage: npm run demo:writer -- <mongoUrl>   (flowsync logs the URL it uses at start-up)");
  process.exit(2);
}
const flowId = values.flow!;
const count = Number(values.count);
const interval = Number(values["interval-ms"]);

const client = new MongoClient(url);
await client.connect();
const db = client.db(values.db);
const nodes = db.collection("nodes");
const edges = db.collection("edges");
const executions = db.collection("flow_executions");
const logs = db.collection("flow_logs");
const pause = () => new Promise((r) => setTimeout(r, interval));

const a = await nodes.insertOne({ flowId, type: "prompt", position: { x: 0, y: 0 }, data: { text: "Hello" }, secrets: { apiKey: "never-leaves-mongodb" } });
const b = await nodes.insertOne({ flowId, type: "llm", position: { x: 200, y: 0 }, data: { model: "small" } });
await edges.insertOne({ flowId, source: a.insertedId.toHexString(), target: b.insertedId.toHexString() });
const run = await executions.insertOne({ flowId, status: "running", progress: 0, jobs: {} });
console.log(`wrote 2 nodes, 1 edge, 1 execution for flow ${flowId}; now moving a node and streaming a run…`);

for (let i = 1; i <= count; i++) {
  await pause();
  await nodes.updateOne({ _id: b.insertedId }, { $set: { "position.x": 200 + i * 10, "position.y": i * 5 } });
  await logs.insertOne({ flowId, executionId: run.insertedId, nodeId: b.insertedId, chunk: `token-${i} ` });
  await executions.updateOne({ _id: run.insertedId }, { $set: { progress: Math.round((i / count) * 100), [`jobs.${b.insertedId.toHexString()}`]: "running" } });
}
await executions.updateOne({ _id: run.insertedId }, { $set: { status: "done", progress: 100 } });
await nodes.deleteOne({ _id: a.insertedId });
console.log("done: the run finished and the prompt node was deleted");
await client.close();
