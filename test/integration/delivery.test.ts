import { describe, expect, it } from "vitest";
import { flowEventSchema } from "../../src/events/schemas";
import { eventually } from "../support/eventually";
import { connected, subscribeUrl, useFlowsync } from "../support/flowsync";

const t = useFlowsync("t");

describe("delivery", () => {
  it("an edit by an independent MongoClient reaches its flow's subscribers only, typed, without private fields", async () => {
    const a1 = await connected(t.fs, "flow-a");
    const a2 = await connected(t.fs, "flow-a");
    const b = await connected(t.fs, "flow-b");

    await t.db
      .collection("nodes")
      .insertOne({ _id: "n1" as never, flowId: "flow-a", type: "llm", position: { x: 1, y: 2 }, secrets: { apiKey: "TOPSECRET-1" }, _internal: "TOPSECRET-2" });
    await t.db.collection("nodes").updateOne({ _id: "n1" as never }, { $set: { "position.x": 9, "secrets.other": "TOPSECRET-3", _internal: "TOPSECRET-4" } });
    // Removed by the pipeline, not from the database: once flowsync has read both changes, the
    // stored document still has its private fields.
    await a1.until((x) => x.messages.length >= 2, 10_000, "2 events");
    expect(await t.db.collection("nodes").findOne({ _id: "n1" as never })).toMatchObject({
      secrets: { apiKey: "TOPSECRET-1", other: "TOPSECRET-3" },
      _internal: "TOPSECRET-4",
    });
    await t.db.collection("edges").insertOne({ flowId: "flow-a", source: "n1", target: "n2" });
    await t.db.collection("flow_executions").insertOne({ flowId: "flow-a", status: "running", progress: 10 });
    await t.db.collection("flow_logs").insertOne({ flowId: "flow-a", chunk: "tok" });
    await t.db.collection("nodes").deleteOne({ _id: "n1" as never });

    for (const c of [a1, a2]) await c.until((x) => x.messages.length >= 6, 10_000, "6 events");
    const events = a1.events();
    expect(events.map((e) => [e.type, e.data.op])).toEqual([
      ["SYNC_CANVAS", "insert"],
      ["SYNC_CANVAS", "update"],
      ["SYNC_CANVAS", "insert"],
      ["EXECUTION_UPDATE", "insert"],
      ["LOG_STREAM", "insert"],
      ["SYNC_CANVAS", "delete"],
    ]);
    for (const e of events) expect(flowEventSchema.safeParse({ type: e.type, data: e.data }).success).toBe(true);
    expect(events[0]!.data).toMatchObject({ flowId: "flow-a", id: "n1", entity: "node", doc: { position: { x: 1, y: 2 } } });
    expect(events[1]!.data).toMatchObject({ changes: { set: { "position.x": 9 }, unset: [] } });
    expect(events[2]!.data).toMatchObject({ entity: "edge" });
    expect(a2.events()).toEqual(events);
    for (const c of [a1, a2, b]) {
      expect(c.raw).not.toContain("TOPSECRET");
      expect(c.raw).not.toContain("secrets");
      expect(c.raw).not.toContain("_internal");
    }
    expect(b.messages).toEqual([]);
    await Promise.all([a1.close(), a2.close(), b.close()]);
  });

  it("a document without a flowId is a counted skip and the stream stays up", async () => {
    const c = await connected(t.fs, "flow-c");
    const before = t.fs.feed.counters.skipped.unroutable ?? 0;
    await t.db.collection("nodes").insertOne({ type: "orphan" });
    await t.db.collection("nodes").insertOne({ flowId: 42 });
    await t.db.collection("nodes").insertOne({ flowId: "flow-c", type: "ok" });
    await c.until((x) => x.messages.length >= 1, 10_000, "the valid event");
    expect(c.events()[0]!.data).toMatchObject({ flowId: "flow-c", doc: { type: "ok" } });
    expect(t.fs.feed.counters.skipped.unroutable).toBe(before + 1);
    expect(t.fs.feed.counters.skipped["flowId-invalid"]).toBeGreaterThanOrEqual(1);
    expect(t.fs.watcher.ready).toBe(true);
    await c.close();
  });

  it("a malformed or foreign cursor gets RESET first, then live events", async () => {
    for (const [cursor, reason] of [
      ["garbage", "cursor-malformed"],
      ["1.zzzzzz.8200", "cursor-foreign"],
    ]) {
      const c = await connected(t.fs, "flow-d", cursor);
      await c.until((x) => x.messages.length >= 1, 5000, "RESET");
      expect(c.events()[0]).toMatchObject({ type: "RESET", data: { flowId: "flow-d", reason } });
      await t.db.collection("nodes").insertOne({ flowId: "flow-d", n: reason });
      await c.until((x) => x.messages.length >= 2, 10_000, "live event after RESET");
      expect(c.events()[1]).toMatchObject({ type: "SYNC_CANVAS", data: { doc: { n: reason } } });
      await c.close();
    }
  });

  it("answers bad requests with JSON errors", async () => {
    const bad = await fetch(subscribeUrl(t.fs, "x".repeat(300)));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: { code: "E_FLOW_ID_INVALID", message: expect.any(String) } });
    const control = await fetch(`${t.fs.url}/api/creative-flowboard/subscribe/a%01b`);
    expect(control.status).toBe(400);
    const missing = await fetch(`${t.fs.url}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: "E_NOT_FOUND" } });
    const health = await fetch(`${t.fs.url}/healthz`);
    expect(await health.json()).toEqual({ status: "ok" });
    const ready = await fetch(`${t.fs.url}/readyz`);
    expect(ready.status).toBe(200);
  });

  it("sends SSE headers and a retry hint", async () => {
    const c = await connected(t.fs, "flow-h");
    expect(c.status).toBe(200);
    expect(c.headers?.get("content-type")).toMatch(/^text\/event-stream/);
    expect(c.headers?.get("x-accel-buffering")).toBe("no");
    expect(c.headers?.get("cache-control")).toContain("no-cache");
    expect(c.raw.startsWith("retry: ")).toBe(true);
    await c.close();
  });

  it("removes the subscriber when the client goes away", async () => {
    const c = await connected(t.fs, "flow-gone");
    expect(t.fs.hub.subscriberCount("flow-gone")).toBe(1);
    await c.close();
    await eventually("the subscriber gone", () => expect(t.fs.hub.subscriberCount("flow-gone")).toBe(0));
  });
});
