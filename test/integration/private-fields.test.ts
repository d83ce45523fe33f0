/**
 * Private fields (filters' `privateFields`: `secrets`, `_internal`) never leave
 * flowsync, by any path: live events, replays from memory, catch-up replays from
 * MongoDB, the snapshot route, the SNAPSHOT event, /metrics — and never its logs,
 * captured here at trace level (so also at info and below), including the logs
 * of skipped documents (no flowId, a bad flowId, failing the filter's schema).
 * The raw bytes are grepped for the secret values.
 */
import { MongoClient, type Db } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Flowsync } from "../../src/flowsync";
import { startTestBackend, uniqueDb, type TestBackend } from "../support/backend";
import { startTestFlowsync, subscribeUrl } from "../support/flowsync";
import { LogSink } from "../support/log-sink";
import { SseClient } from "../support/sse-client";

const MARK = "TOPSECRET";
const secret = (n: number | string) => `${MARK}-${n}`;

let backend: TestBackend;
let writer: MongoClient;
let db: Db;
let memory: Flowsync;
let catchUp: Flowsync;
const logs = new LogSink();

beforeAll(async () => {
  backend = await startTestBackend();
  const dbName = uniqueDb("priv");
  writer = new MongoClient(backend.url);
  db = writer.db(dbName);
  // Pre-images on: deletes and updates then carry the whole previous document, secrets included, into the pipeline.
  for (const coll of ["nodes", "edges", "flow_executions", "flow_logs"]) await db.createCollection(coll, { changeStreamPreAndPostImages: { enabled: true } });
  memory = await startTestFlowsync(backend.url, { MONGO_DB: dbName, LOG_LEVEL: "trace" }, { logger: logs.logger("trace") });
  catchUp = await startTestFlowsync(backend.url, { MONGO_DB: dbName, REPLAY_BUFFER_SIZE: "1", LOG_LEVEL: "trace" }, { logger: logs.logger("trace") });
});

afterAll(async () => {
  await writer?.close();
  await memory?.stop();
  await catchUp?.stop();
  await backend?.stop();
});

/** Every way a private field can be written, in every watched collection. */
async function writeEverything(flowId: string): Promise<void> {
  const nodes = db.collection<{ _id?: string } & Record<string, unknown>>("nodes");
  await nodes.insertOne({ _id: `${flowId}-n1`, flowId, type: "llm", secrets: { apiKey: secret(1), nested: [{ k: secret(2) }] }, _internal: secret(3) });
  await nodes.updateOne(
    { _id: `${flowId}-n1` },
    { $set: { "secrets.apiKey": secret(4), "secrets.more.deep": secret(5), _internal: { x: secret(6) }, "position.x": 1, "position.y": 2 } },
  );
  await nodes.updateOne({ _id: `${flowId}-n1` }, { $set: { secrets: { replaced: secret(7) } }, $unset: { _internal: "" } });
  await nodes.updateOne({ _id: `${flowId}-n1` }, [{ $set: { _internal: secret(8), "data.ok": "visible" } }]);
  await nodes.updateOne({ _id: `${flowId}-n1` }, { $push: { "secrets.list": secret(11) } as never });
  await nodes.replaceOne({ _id: `${flowId}-n1` }, { flowId, type: "prompt", secrets: secret(9), _internal: [secret(10)] });
  await nodes.updateOne({ _id: `${flowId}-n1` }, { $unset: { secrets: "" } });
  await db.collection("edges").insertOne({ flowId, source: "a", target: "b", secrets: secret(12) });
  await db.collection("flow_executions").insertOne({ flowId, status: "running", progress: 5, _internal: { token: secret(13) } });
  await db.collection("flow_logs").insertOne({ flowId, chunk: "tok", secrets: secret(14) });
  // Skipped documents: their skip is logged (warn) — with no secret in the log line.
  await nodes.insertOne({ type: "orphan", secrets: secret(15) });
  await nodes.insertOne({ flowId: 42, secrets: secret(16) });
  await nodes.insertOne({ flowId, position: "not-an-object", secrets: secret(17), _internal: secret(18) });
  await nodes.insertOne({ _id: `${flowId}-n2`, flowId, secrets: secret(19) });
  await nodes.deleteOne({ _id: `${flowId}-n2` });
  await nodes.insertOne({ flowId, type: "sentinel" });
}

const sawSentinel = (c: SseClient) => c.events().some((e) => (e.data.doc as { type?: string } | null)?.type === "sentinel");

describe("private fields never leave flowsync", () => {
  it("not in live events, replays from memory or from MongoDB, snapshots, the SNAPSHOT event, /metrics, or any log line", async () => {
    const flowId = "priv";
    const live = new SseClient(subscribeUrl(memory, flowId));
    const earlyMemory = new SseClient(subscribeUrl(memory, flowId));
    const earlyCatchUp = new SseClient(subscribeUrl(catchUp, flowId));
    for (const c of [live, earlyMemory, earlyCatchUp]) await c.until((x) => x.raw.includes(": flowsync"), 5000, "stream open");
    await db.collection("nodes").insertOne({ flowId, type: "first" });
    for (const c of [live, earlyMemory, earlyCatchUp]) await c.until((x) => x.messages.length === 1, 10_000, "first event");
    // Two subscribers leave now and resume after the writes: one from memory, one through a catch-up stream.
    await earlyMemory.close();
    await earlyCatchUp.close();

    await writeEverything(flowId);
    await live.until(sawSentinel, 10_000, "the last live event");
    const fromMemory = new SseClient(subscribeUrl(memory, flowId), { lastEventId: earlyMemory.lastEventId });
    const fromMongo = new SseClient(subscribeUrl(catchUp, flowId), { lastEventId: earlyCatchUp.lastEventId });
    const withSnapshot = new SseClient(subscribeUrl(memory, flowId, "?snapshot=1&logs=1"));
    for (const c of [fromMemory, fromMongo]) await c.until(sawSentinel, 10_000, "the replay");
    // The same events (an update's looked-up `doc` may differ on a later read: docs/wire.md, "Event data").
    const shape = (c: SseClient) => c.events().map((e) => [e.id, e.type, e.data.op, e.data.id, e.data.changes]);
    for (const c of [fromMemory, fromMongo]) expect(shape(c)).toEqual(shape(live).slice(1));
    await withSnapshot.until((x) => x.messages.length >= 1, 10_000, "SNAPSHOT");
    const snapshot = await (await fetch(`${memory.url}/api/creative-flowboard/flows/${flowId}/snapshot?logs=1`)).text();
    const metrics = await (await fetch(`${memory.url}/metrics`)).text();
    expect(memory.subscriptions.counters.replayedFromMemory).toBeGreaterThan(0);
    expect(catchUp.subscriptions.counters.replayedFromMongo).toBeGreaterThan(0);
    // The writes did reach flowsync: redacted, not dropped.
    expect(live.events().map((e) => e.type)).toContain("LOG_STREAM");
    expect(live.raw).toContain('"visible"');
    expect(JSON.parse(snapshot)).toMatchObject({ flowId, canvas: { node: expect.any(Array), edge: expect.any(Array) } });
    expect(memory.feed.counters.skipped.schema ?? 0).toBeGreaterThan(0);
    expect(logs.find("change skipped").length).toBeGreaterThanOrEqual(3);

    const outputs: Record<string, string> = {
      "live SSE bytes": live.raw,
      "SSE bytes replayed from memory": fromMemory.raw,
      "SSE bytes replayed from MongoDB": fromMongo.raw,
      "SNAPSHOT event": withSnapshot.raw,
      "snapshot route": snapshot,
      metrics,
      "logs (trace level)": logs.raw,
    };
    for (const [where, bytes] of Object.entries(outputs)) {
      expect(bytes.length, where).toBeGreaterThan(0);
      expect(bytes.includes(MARK), `${where} contains a private value`).toBe(false);
    }
    for (const [where, bytes] of Object.entries(outputs).filter(([w]) => w !== "logs (trace level)" && w !== "metrics")) {
      expect(/"secrets|"_internal/.test(bytes), `${where} names a private field`).toBe(false);
    }
    // The pipeline removed them from what flowsync reads; MongoDB still holds every one, as written
    // (read by the independent writer: watching must never change what is stored).
    const stored = async (coll: string, filter: Record<string, unknown>) => db.collection(coll).findOne(filter, { projection: { _id: 0 } });
    expect(await stored("nodes", { _id: `${flowId}-n1` })).toEqual({ flowId, type: "prompt", _internal: [secret(10)] });
    expect(await stored("edges", { flowId })).toEqual({ flowId, source: "a", target: "b", secrets: secret(12) });
    expect(await stored("flow_executions", { flowId })).toEqual({ flowId, status: "running", progress: 5, _internal: { token: secret(13) } });
    expect(await stored("flow_logs", { flowId })).toEqual({ flowId, chunk: "tok", secrets: secret(14) });
    expect(await stored("nodes", { type: "orphan" })).toEqual({ type: "orphan", secrets: secret(15) });
    expect(await stored("nodes", { flowId, position: "not-an-object" })).toEqual({
      flowId,
      position: "not-an-object",
      secrets: secret(17),
      _internal: secret(18),
    });
    // Every update of n1 reached the subscriber, the last one ($unset of the private field alone) included.
    const n1 = live
      .events()
      .filter((e) => e.data.id === `${flowId}-n1`)
      .map((e) => e.data.op);
    expect(n1).toEqual(["insert", "update", "update", "update", "update", "replace", "update"]);
    console.log(`private fields: ${Object.values(outputs).reduce((n, b) => n + b.length, 0)} bytes grepped, ${logs.lines.length} log lines`);
    await Promise.all([live, fromMemory, fromMongo, withSnapshot].map((c) => c.close()));
  });
});
