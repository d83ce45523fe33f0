/**
 * Snapshot + stream = the whole truth: a flow's state read at one point in time,
 * and the events after it, stitched with no gap and no duplicate, while other
 * clients keep writing.
 */
import type { MongoClient } from "mongodb";
import { describe, expect, it } from "vitest";
import { snapshotDataSchema } from "../../src/events/schemas";
import { subscribeUrl, useFlowsync } from "../support/flowsync";
import { seededRandom, testSeed } from "../support/random";
import { snapshotMidWrites } from "../support/seam";
import { SseClient } from "../support/sse-client";

const t = useFlowsync("snap");

const snapshotUrl = (flowId: string, q = "") => `${t.fs.url}/api/creative-flowboard/flows/${encodeURIComponent(flowId)}/snapshot${q}`;

type Doc = Record<string, unknown> & { _id: string };

/** Applies events to a node map as a client store would. */
function apply(state: Map<string, Doc>, e: { type?: string; data: Record<string, unknown> }): void {
  if (e.type !== "SYNC_CANVAS") return;
  const { op, id, doc } = e.data as { op: string; id: string; doc: Doc | null };
  if (op === "delete") {
    expect(state.has(id), `delete of ${id} that the client never saw`).toBe(true);
    state.delete(id);
  } else if (op === "insert") {
    expect(state.has(id), `duplicate insert of ${id}`).toBe(false);
    state.set(id, doc!);
  } else if (doc) state.set(id, doc);
}

describe("snapshot", () => {
  it("gives an empty snapshot for a flow with no documents, and 400 for an invalid flowId", async () => {
    const res = await fetch(snapshotUrl("brand-new-flow"));
    expect(res.status).toBe(200);
    const body = snapshotDataSchema.parse(await res.json());
    expect(body).toMatchObject({ flowId: "brand-new-flow", canvas: {}, executions: [] });
    expect(body.logs).toBeUndefined();
    const bad = await fetch(snapshotUrl("x".repeat(300)));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: "E_FLOW_ID_INVALID" } });
  });

  it("holds the flow's nodes, edges, latest execution and (when asked) logs, without private fields", async () => {
    await t.db.collection("nodes").insertMany([
      { _id: "s1" as never, flowId: "snap-a", type: "llm", secrets: { k: "TOPSECRET" } },
      { _id: "s2" as never, flowId: "snap-a", _internal: "TOPSECRET" },
      { _id: "s3" as never, flowId: "other" },
    ]);
    await t.db.collection("edges").insertOne({ flowId: "snap-a", source: "s1", target: "s2" });
    await t.db.collection("flow_executions").insertMany([
      { flowId: "snap-a", status: "done", progress: 100 },
      { flowId: "snap-a", status: "running", progress: 40 },
    ]);
    await t.db.collection("flow_logs").insertMany([
      { flowId: "snap-a", chunk: "a" },
      { flowId: "snap-a", chunk: "b" },
    ]);
    const res = await fetch(snapshotUrl("snap-a", "?logs=1"));
    const text = await res.text();
    expect(text).not.toContain("TOPSECRET");
    // Left out of the snapshot, still in the database.
    expect(await t.db.collection("nodes").countDocuments({ "secrets.k": "TOPSECRET" })).toBe(1);
    expect(await t.db.collection("nodes").countDocuments({ _internal: "TOPSECRET" })).toBe(1);
    const body = snapshotDataSchema.parse(JSON.parse(text));
    expect(body.canvas.node!.map((d) => d._id).sort()).toEqual(["s1", "s2"]);
    expect(body.canvas.edge).toHaveLength(1);
    expect(body.executions).toEqual([expect.objectContaining({ status: "running", progress: 40 })]);
    expect(body.logs!.map((d) => d.chunk)).toEqual(["a", "b"]);
    const noLogs = snapshotDataSchema.parse(await (await fetch(snapshotUrl("snap-a"))).json());
    expect(noLogs.logs).toBeUndefined();
  });

  it("?snapshot=1 sends the SNAPSHOT first, then every change after it", async () => {
    await t.db.collection("nodes").insertOne({ _id: "p1" as never, flowId: "snap-b", v: 1 });
    const c = new SseClient(subscribeUrl(t.fs, "snap-b", "?snapshot=1"));
    await c.until((x) => x.messages.length >= 1, 5000, "SNAPSHOT");
    const [first] = c.events();
    expect(first!.type).toBe("SNAPSHOT");
    expect(first!.id).toBe(first!.data.cursor);
    expect((first!.data.canvas as Record<string, Doc[]>).node!.map((d) => d._id)).toEqual(["p1"]);
    await t.db.collection("nodes").updateOne({ _id: "p1" as never }, { $set: { v: 2 } });
    await c.until((x) => x.messages.length >= 2, 10_000, "the update");
    expect(c.events()[1]).toMatchObject({ type: "SYNC_CANVAS", data: { op: "update", id: "p1", changes: { set: { v: 2 } } } });
    await c.close();
  });

  it("?types= narrows a subscription; RESET still arrives", async () => {
    const c = new SseClient(subscribeUrl(t.fs, "snap-t", "?types=EXECUTION_UPDATE"));
    await c.opened();
    await t.db.collection("nodes").insertOne({ flowId: "snap-t" });
    await t.db.collection("flow_logs").insertOne({ flowId: "snap-t", chunk: "x" });
    await t.db.collection("flow_executions").insertOne({ flowId: "snap-t", progress: 5 });
    // A sentinel of the subscribed type, not a pause: the flow's events arrive in order, so a leak shows before it.
    await t.db.collection("flow_executions").insertOne({ flowId: "snap-t", progress: 6 });
    await c.until((x) => x.events().some((e) => (e.data.doc as { progress?: number } | null)?.progress === 6), 10_000, "the sentinel");
    expect(c.events().map((e) => e.type)).toEqual(["EXECUTION_UPDATE", "EXECUTION_UPDATE"]);
    await c.close();
    const bad = await fetch(subscribeUrl(t.fs, "snap-t", "?types=NOPE"));
    expect(bad.status).toBe(400);
    const reset = new SseClient(subscribeUrl(t.fs, "snap-t", "?types=LOG_STREAM"), { lastEventId: "bad" });
    await reset.until((x) => x.messages.length >= 1, 5000, "RESET");
    expect(reset.events()[0]!.type).toBe("RESET");
    await reset.close();
  });

  it("snapshot + stream equal the database while independent clients keep writing (no gap, no duplicate)", async () => {
    const seed = testSeed("snapshot/seam");
    const trials = 10;
    for (let trial = 0; trial < trials; trial++) {
      const rand = seededRandom(seed + trial);
      const flowId = `seam-${trial}`;
      let n = 0;
      const write = async (client: MongoClient, w: number, stopped: () => boolean) => {
        const nodes = client.db(t.db.databaseName).collection<Doc>("nodes");
        const mine: string[] = [];
        while (!stopped()) {
          const r = rand();
          if (mine.length === 0 || r < 0.4) {
            const id = `${flowId}-w${w}-${n++}`;
            await nodes.insertOne({ _id: id, flowId, v: n });
            mine.push(id);
          } else if (r < 0.8) {
            await nodes.updateOne({ _id: mine[Math.floor(rand() * mine.length)] }, { $set: { v: n++ } });
          } else {
            await nodes.deleteOne({ _id: mine.splice(Math.floor(rand() * mine.length), 1)[0] });
          }
        }
      };
      const events = await snapshotMidWrites(t, flowId, rand, 3, write);

      const [snap, ...rest] = events;
      const state = new Map<string, Doc>(((snap!.data.canvas as Record<string, Doc[]>).node ?? []).map((d) => [d._id, d]));
      for (const e of rest) apply(state, e);
      const truth = await t.db.collection<Doc>("nodes").find({ flowId }).toArray();
      expect([...state.keys()].sort(), `trial ${trial} (seed ${seed + trial})`).toEqual(truth.map((d) => d._id).sort());
      for (const d of truth) expect(state.get(d._id), `trial ${trial}: ${d._id}`).toEqual(d);
    }
  }, 120_000);
});
