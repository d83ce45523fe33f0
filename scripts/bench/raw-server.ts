/**
 * The floor the benchmark compares flowsync with: ONE change stream and a bare
 * `node:http` fan-out — each change serialized once and `res.write` of that same
 * string to every response of its flow. No Koa, no queue, no backpressure, no
 * replay, no filters: nothing flowsync needs to be correct, so what it costs on
 * this machine is the cost of the socket writes themselves.
 *
 * With RAW_COALESCE=1 it is the *coalescing* floor instead: the frames of a flow that arrive in one
 * tick are joined into ONE pre-built Buffer, written as is to every response (what a burst costs
 * when nothing at all is done per subscriber but the write).
 *
 *   MONGO_URL=… MONGO_DB=flowboard PORT=3200 [RAW_COALESCE=1] node --import tsx scripts/bench/raw-server.ts
 *
 * Prints `raw listening <url>` once ready. For the benchmark only.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { MongoClient, type Document } from "mongodb";
import { squashError } from "../../src/errors";

const url = process.env.MONGO_URL;
if (!url) throw new Error("MONGO_URL is required");
const client = new MongoClient(url);
await client.connect();
const flows = new Map<string, Set<http.ServerResponse>>();

const coalesce = process.env.RAW_COALESCE === "1";
const pending = new Map<string, string[]>();
function flush(): void {
  for (const [flowId, frames] of pending) {
    const bytes = Buffer.from(frames.join(""));
    for (const res of flows.get(flowId) ?? []) res.write(bytes);
  }
  pending.clear();
}

const stream = client.db(process.env.MONGO_DB || "flowboard").watch<Document>([], { fullDocument: "updateLookup" });
await stream.tryNext(); // the stream exists from here on
void (async () => {
  for (;;) {
    const change = (await stream.next()) as Document;
    const doc = change.fullDocument as Document | undefined;
    const set = doc && flows.get(String(doc.flowId));
    if (!set) continue;
    const frame = `id: ${change._id._data}\nevent: SYNC_CANVAS\ndata: ${JSON.stringify({ flowId: doc.flowId, op: change.operationType, id: String(doc._id), doc })}\n\n`;
    if (!coalesce) {
      for (const res of set) res.write(frame);
      continue;
    }
    const flowId = String(doc.flowId);
    const list = pending.get(flowId);
    if (list) list.push(frame);
    else pending.set(flowId, [frame]);
    if (pending.size === 1 && list === undefined) setImmediate(flush);
  }
})().catch(squashError);

const server = http.createServer((req, res) => {
  const match = /^\/subscribe\/([^/?]+)/.exec(req.url ?? "");
  if (!match) {
    res.writeHead(404).end();
    return;
  }
  const flowId = decodeURIComponent(match[1]!);
  let set = flows.get(flowId);
  if (!set) flows.set(flowId, (set = new Set()));
  set.add(res);
  res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  res.write("retry: 2000\n: raw\n");
  res.on("close", () => {
    set.delete(res);
    if (set.size === 0) flows.delete(flowId);
  });
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`raw listening http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

const stop = async () => {
  server.closeAllConnections();
  server.close();
  await stream.close().catch(squashError);
  await client.close(true).catch(squashError);
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
