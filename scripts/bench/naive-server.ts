/**
 * The naive design the benchmark compares flowsync with: what most tutorials
 * teach. Every SSE subscriber opens its own change stream (a `watch()` per
 * browser, with the driver's default pool) and every change is serialized again
 * for every subscriber. Plain `node:http`, no framework, no backpressure: this
 * is as cheap as that design gets. Never use it for anything but this comparison.
 *
 *   MONGO_URL=… MONGO_DB=flowboard PORT=3100 node --import tsx scripts/bench/naive-server.ts
 *
 * Prints `naive listening <url>` once ready.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { MongoClient, type ChangeStreamDocument, type Document } from "mongodb";
import { squashError } from "../../src/errors";

const url = process.env.MONGO_URL;
if (!url) throw new Error("MONGO_URL is required");
const client = new MongoClient(url);
await client.connect();
const nodes = client.db(process.env.MONGO_DB || "flowboard").collection("nodes");
let open = 0;

const server = http.createServer(async (req, res) => {
  const match = /^\/subscribe\/([^/?]+)/.exec(req.url ?? "");
  if (!match) {
    res.writeHead(404).end();
    return;
  }
  const flowId = decodeURIComponent(match[1]!);
  const stream = nodes.watch<Document, ChangeStreamDocument<Document>>([{ $match: { "fullDocument.flowId": flowId } }], { fullDocument: "updateLookup" });
  let closed = false;
  req.on("close", () => {
    closed = true;
    open--;
    void stream.close().catch(squashError);
  });
  open++;
  const send = (change: ChangeStreamDocument<Document>) => {
    const doc = "fullDocument" in change ? change.fullDocument : undefined;
    const data = JSON.stringify({ flowId, op: change.operationType, id: String(doc?._id), doc });
    res.write(`id: ${(change._id as { _data: string })._data}\nevent: SYNC_CANVAS\ndata: ${data}\n\n`);
  };
  try {
    const first = await stream.tryNext(); // sends the aggregate: the stream exists from here on
    if (closed) return;
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    res.write("retry: 2000\n: naive\n");
    if (first) send(first);
    while (!closed) send(await stream.next());
  } catch (err) {
    if (closed) return;
    if (!res.headersSent) res.writeHead(500).end(String((err as Error).message));
    else res.end();
  }
});
server.keepAliveTimeout = 0;
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`naive listening http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

const stop = async () => {
  server.closeAllConnections();
  server.close();
  await client.close(true).catch(squashError);
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
process.on("SIGUSR2", () => console.log(`naive open streams: ${open}`));
