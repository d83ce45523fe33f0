/**
 * Issue 12 through the real driver on the backend: a flow stored as ONE document
 * (`workflows`: `nodes[]` and `edges[]`, pre/post images on; `boards`: an object of
 * cards keyed by id, images off). Every listed update operator and replaceOne,
 * written by an independent client; a client store fed from the wire must equal
 * the database; private element fields are never on the wire and still in the
 * database; a resume from ANY event's cursor — inside a multi-element change too —
 * gives exactly the rest, from memory and from a catch-up stream.
 */
import type { Document } from "mongodb";
import { beforeAll, describe, expect, it } from "vitest";
import { createFlowStore, type DocEvent, type FlowStore } from "flowsync-client";
import { flowEventSchema, snapshotDataSchema } from "../../src/events/schemas";
import type { Flowsync } from "../../src/flowsync";
import { uniqueDb, useBackend } from "../support/backend";
import { startTestFlowsync, subscribeUrl } from "../support/flowsync";
import { changeStreamCursors } from "../support/server-view";
import { SseClient } from "../support/sse-client";
import { afterAll } from "vitest";
import { eventually } from "../support/eventually";
import { LogSink } from "../support/log-sink";
import { ObjectId } from "mongodb";

interface El {
  id: string;
  [field: string]: unknown;
}
interface IdDoc {
  _id: string;
  name?: string;
  title?: string;
  secrets?: unknown;
  nodes?: El[];
  edges?: El[];
  viewport?: unknown;
  graph?: { nodes: Record<string, Record<string, unknown>> };
}
const FILTERS_DIR = "test/fixtures/filters-embedded";
const MARK = "EL3MENTSECRET";
const h = useBackend();
const logs = new LogSink();
let memory: Flowsync;
let catchUp: Flowsync;
let dbName: string;
const db = () => h.client.db(dbName);

beforeAll(async () => {
  dbName = uniqueDb("emb");
  await db().createCollection("workflows", { changeStreamPreAndPostImages: { enabled: true } });
  await db().createCollection("boards");
  memory = await startTestFlowsync(h.backend.url, { MONGO_DB: dbName, FILTERS_DIR, LOG_LEVEL: "trace" }, { logger: logs.logger("trace") });
  // Every resume from an older cursor goes through a catch-up stream.
  catchUp = await startTestFlowsync(h.backend.url, { MONGO_DB: dbName, FILTERS_DIR, REPLAY_BUFFER_SIZE: "1" });
});

afterAll(async () => {
  await memory?.stop();
  await catchUp?.stop();
});

const node = (id: string, x = 0) => ({ id, type: "llm", position: { x, y: 0 }, credentials: { apiKey: `${MARK}-${id}` } });
const edge = (id: string, source: string, target: string) => ({ id, source, target });

/** Every operator of the issue, on one workflow document. Ends with a sentinel rename. */
async function writeAll(flowId: string): Promise<void> {
  const wf = db().collection<IdDoc>("workflows");
  await wf.insertOne({
    _id: flowId,
    name: "n8n-like",
    secrets: { token: MARK },
    nodes: [node("a"), node("b", 10), node("c", 20)],
    edges: [edge("e1", "a", "b")],
  });
  await wf.updateOne({ _id: flowId }, { $set: { "nodes.1.position.x": 210, "nodes.1.credentials.apiKey": `${MARK}-2` } });
  await wf.updateOne({ _id: flowId }, { $push: { nodes: { $each: [node("d", 30), node("e", 40)] } } });
  await wf.updateOne({ _id: flowId }, { $addToSet: { edges: edge("e2", "b", "c") } });
  await wf.updateOne({ _id: flowId }, { $pull: { nodes: { id: "e" } } });
  await wf.updateOne({ _id: flowId }, { $pullAll: { edges: [edge("e1", "a", "b")] } });
  await wf.updateOne({ _id: flowId }, { $pop: { nodes: -1 } });
  await wf.updateOne({ _id: flowId, "nodes.id": "c" }, { $set: { "nodes.$.type": "tool" } });
  await wf.updateOne({ _id: flowId }, { $inc: { "nodes.$[].position.y": 5 } });
  await wf.updateOne({ _id: flowId }, { $set: { "nodes.$[n].type": "agent" } }, { arrayFilters: [{ "n.position.x": { $gte: 25 } }] });
  await wf.updateOne({ _id: flowId }, [{ $set: { nodes: { $reverseArray: "$nodes" }, viewport: { x: 1, y: 2, zoom: 1 } } }]);
  await wf.updateOne({ _id: flowId }, [{ $set: { nodes: { $slice: ["$nodes", 2] } } }]);
  await wf.updateOne({ _id: flowId }, { $set: { "nodes.0.id": "renamed" } });
  await wf.replaceOne(
    { _id: flowId },
    { name: "replaced", secrets: { token: MARK }, nodes: [node("renamed", 1), node("z")], edges: [edge("e3", "z", "renamed")] },
  );
  await wf.updateOne({ _id: flowId }, { $set: { name: "end" } });
}

const isEnd = (c: SseClient) => c.events().some((e) => e.data.entity === "flow" && (e.data.doc as { name?: string } | null)?.name === "end");

function storeOf(events: ReturnType<SseClient["events"]>): FlowStore {
  const store = createFlowStore();
  for (const e of events) {
    const parsed = flowEventSchema.parse({ type: e.type, data: e.data }) as DocEvent;
    store.apply(parsed, e.id);
  }
  return store;
}

/** What the database holds, as the store should show it. */
async function truth(flowId: string): Promise<{ node: Record<string, Document>; edge: Record<string, Document> }> {
  const doc = await db().collection<IdDoc>("workflows").findOne({ _id: flowId });
  const hide = ({ credentials: _c, ...rest }: Document) => rest;
  return {
    node: Object.fromEntries((doc?.nodes ?? []).map((n: Document) => [n.id, hide(n)])),
    edge: Object.fromEntries((doc?.edges ?? []).map((e: Document) => [e.id, e])),
  };
}

describe("embedded entities through the driver", () => {
  let stream: ReturnType<SseClient["events"]>;
  const flowId = "wf-ops";

  it("every operator: per-element events, a store equal to the database, private fields only in the database", async () => {
    const live = new SseClient(subscribeUrl(memory, flowId));
    await live.opened();
    await writeAll(flowId);
    await live.until(isEnd, 15_000, "the last event");
    await live.close();
    stream = live.events();
    expect(live.raw).not.toContain(MARK);
    expect(live.raw).not.toContain("credentials");
    // Still in the database, both the document's and the elements'.
    const stored = await db().collection<IdDoc>("workflows").findOne({ _id: flowId });
    expect(stored?.secrets).toEqual({ token: MARK });
    expect(stored?.nodes?.map((n) => (n.credentials as { apiKey: string }).apiKey)).toEqual([`${MARK}-renamed`, `${MARK}-z`]);

    const summary = stream.map((e) => `${String(e.data.op)} ${String(e.data.entity)} ${String(e.data.id)}`);
    expect(summary).toEqual([
      "insert flow wf-ops",
      "insert node a",
      "insert node b",
      "insert node c",
      "insert edge e1",
      "update node b", // $set inside an element (its private change is invisible)
      "insert node d",
      "insert node e", // $push $each
      "insert edge e2", // $addToSet
      "delete node e", // $pull
      "delete edge e1", // $pullAll
      "delete node a", // $pop
      "update node c", // positional $
      "update node b",
      "update node c",
      "update node d", // $[]
      "update node b",
      "update node d", // $[n] (c is at x 20)
      "update flow wf-ops", // pipeline: reversed (no element event) + viewport
      "delete node b", // pipeline $slice: truncatedArrays
      "delete node d",
      "insert node renamed", // key change: delete + insert
      "replace flow wf-ops",
      "delete node c",
      "update node renamed",
      "insert node z",
      "delete edge e2",
      "insert edge e3",
      "update flow wf-ops",
    ]);
    const b = stream.find((e) => e.data.id === "b" && e.data.op === "update")!;
    expect(b.data.changes).toEqual({ set: { "position.x": 210 }, unset: [] });
    // One change, several events: distinct cursors, the last at the change's token.
    const ids = stream.map((e) => e.id!);
    expect(new Set(ids).size).toBe(ids.length);

    const store = storeOf(stream);
    const expected = await truth(flowId);
    expect(store.getState().nodes).toEqual(expected.node);
    expect(store.getState().edges).toEqual(expected.edge);
    expect(store.getState().entities.flow?.[flowId]).toEqual({ _id: flowId, name: "end" });
  }, 60_000);

  it("a resume from every event's cursor gives exactly the rest, from memory and from a catch-up stream", async () => {
    expect(stream.length).toBeGreaterThan(20);
    for (const [name, fs] of [
      ["memory", memory],
      ["catch-up", catchUp],
    ] as const) {
      for (let k = 0; k < stream.length; k++) {
        const resumed = new SseClient(subscribeUrl(fs, flowId), { lastEventId: stream[k]!.id });
        const rest = stream.slice(k + 1);
        if (rest.length === 0) {
          await resumed.opened();
        } else {
          await resumed.until((c) => c.messages.length >= rest.length && isEnd(c), 15_000, `${name}: the rest after event ${k}`);
        }
        await resumed.close();
        expect(
          resumed.events().map((e) => e.id),
          `${name}, resumed after event ${k}`,
        ).toEqual(rest.map((e) => e.id));
        expect(resumed.raw).not.toContain("RESET");
      }
    }
    expect(catchUp.subscriptions.counters.replayedFromMongo).toBeGreaterThan(0);
  }, 120_000);

  it("a cursor inside a change that is not in the history (its token altered) gets RESET cursor-unknown, not other changes", async () => {
    const inside = stream.find((e) => /-\d+-\d+-\d+$/.test(e.id!))!;
    const dot = inside.id!.lastIndexOf(".");
    const [token, ...rest] = inside.id!.slice(dot + 1).split("-");
    // A token at the same cluster time that no change has (one hex digit off the real one).
    const last = token!.at(-1)!;
    const altered = `${token!.slice(0, -1)}${last === "F" ? "E" : (parseInt(last, 16) + 1).toString(16).toUpperCase()}`;
    const resumed = new SseClient(subscribeUrl(catchUp, flowId), { lastEventId: `${inside.id!.slice(0, dot + 1)}${[altered, ...rest].join("-")}` });
    await resumed.until((c) => c.events().some((e) => e.type === "RESET"), 15_000, "RESET");
    await resumed.close();
    const reset = resumed.events().find((e) => e.type === "RESET")!;
    expect(reset.data).toMatchObject({ flowId, reason: "cursor-unknown" });
    // Nothing of the stream came before it.
    expect(resumed.events()[0]!.type).toBe("RESET");
  });

  it("the snapshot lists the elements like per-document entities, and the store from it equals the database", async () => {
    const res = await fetch(`${memory.url}/api/creative-flowboard/flows/${flowId}/snapshot`);
    const text = await res.text();
    expect(text).not.toContain(MARK);
    const snapshot = snapshotDataSchema.parse(JSON.parse(text));
    expect(snapshot.keys).toEqual({ node: "id", edge: "id", card: "id" });
    expect(snapshot.canvas.flow).toEqual([{ _id: flowId, name: "end" }]);
    const store = createFlowStore();
    store.load(snapshot);
    const expected = await truth(flowId);
    expect(store.getState().nodes).toEqual(expected.node);
    expect(store.getState().edges).toEqual(expected.edge);
    // Subscribing from its cursor: live changes after it, nothing again.
    const after = new SseClient(subscribeUrl(memory, flowId), { lastEventId: snapshot.cursor });
    await after.opened();
    await db()
      .collection<IdDoc>("workflows")
      .updateOne({ _id: flowId }, { $set: { "nodes.1.position.x": 7 } });
    await after.until((c) => c.messages.length === 1, 10_000, "the change after the snapshot");
    await after.close();
    expect(after.events().map((e) => [e.data.op, e.data.id])).toEqual([["update", "z"]]);
  }, 30_000);

  it("a resume from inside a change read from the lookup document: exact from memory, RESET from a catch-up (it would be derived anew)", async () => {
    const boards = db().collection<IdDoc>("boards");
    const id = "board-resume";
    const live = new SseClient(subscribeUrl(memory, id));
    await live.opened();
    await boards.insertOne({ _id: id, title: "t", graph: { nodes: { a: { label: "A" } } } });
    await live.until((c) => c.messages.length >= 2, 10_000, "the insert's events");
    // Two events from one change: the document-level update, then a replace-all of the cards from the lookup document.
    await boards.updateOne({ _id: id }, { $set: { title: "t2", "graph.nodes.a.label": "A2" } });
    await live.until((c) => c.messages.length >= 4, 10_000, "the update's events");
    await live.close();
    const [inside, last] = live.events().slice(2);
    expect(inside!.id).toMatch(/-\d+-\d+-\d+$/);
    const fromMemory = new SseClient(subscribeUrl(memory, id), { lastEventId: inside!.id });
    await fromMemory.until((c) => c.events().length >= 1, 10_000, "the rest from memory");
    await fromMemory.close();
    expect(fromMemory.events().map((e) => e.id)).toEqual([last!.id]);
    // A later change elsewhere pushes the update out of the catch-up instance's one-entry replay buffer.
    const other = new SseClient(subscribeUrl(catchUp, "board-other"));
    await other.opened();
    await boards.insertOne({ _id: "board-other", title: "o", graph: { nodes: {} } });
    await other.until((c) => c.events().length >= 1, 10_000, "the other flow's event");
    await other.close();
    const fromMongo = new SseClient(subscribeUrl(catchUp, id), { lastEventId: inside!.id });
    await fromMongo.until((c) => c.events().some((e) => e.type === "RESET"), 10_000, "RESET");
    await fromMongo.close();
    expect(fromMongo.events()[0]).toMatchObject({ type: "RESET", data: { flowId: id, reason: "history-lost" } });
    expect(catchUp.subscriptions.counters.replayedFromMongo).toBeGreaterThan(0);
  });

  it("without pre-images (boards): exact where the update says enough, replace-all of the kind otherwise; counted in /metrics", async () => {
    const boards = db().collection<IdDoc>("boards");
    const id = "board-1";
    const live = new SseClient(subscribeUrl(memory, id));
    await live.opened();
    // One write at a time, each awaited on the wire: the updateLookup document is then the one right after it.
    const step = async (write: () => Promise<unknown>, total: number) => {
      await write();
      await live.until((c) => c.messages.length >= total, 10_000, `${total} events`);
    };
    await step(() => boards.insertOne({ _id: id, title: "t", graph: { nodes: { a: { label: "A", credentials: MARK }, b: { label: "B" } } } }), 3);
    await step(() => boards.updateOne({ _id: id }, { $set: { title: "t2" } }), 4); // untouched: document-level only
    await step(() => boards.updateOne({ _id: id }, { $set: { "graph.nodes.a.label": "A2" } }), 5); // lookup: replace-all
    await step(() => boards.updateOne({ _id: id }, { $set: { "graph.nodes": { c: { label: "C" } } } }), 6); // whole value: exact
    await step(() => boards.deleteOne({ _id: id }), 8); // deleted: replace-all with none
    await live.close();
    expect(live.raw).not.toContain(MARK);
    expect(live.events().map((e) => `${String(e.data.op)} ${String(e.data.entity)} ${String(e.data.id)}`)).toEqual([
      "insert board board-1",
      "insert card a",
      "insert card b",
      "update board board-1",
      "replace card board-1",
      "replace card board-1",
      "delete board board-1",
      "replace card board-1",
    ]);
    const replaces = live.events().filter((e) => e.data.op === "replace");
    expect(replaces.map((e) => (e.data.elements as Document[]).map((c) => c.id))).toEqual([["a", "b"], ["c"], []]);
    expect(replaces[0]!.data.elements).toEqual([
      { label: "A2", id: "a" },
      { label: "B", id: "b" },
    ]);
    const store = storeOf(live.events().slice(0, 6));
    expect(store.getState().entities.card).toEqual({ c: { label: "C", id: "c" } });
    expect(Object.keys(storeOf(live.events()).getState().entities.card ?? {})).toEqual([]);

    const metrics = await (await fetch(`${memory.url}/metrics`)).text();
    for (const how of ["untouched", "lookup", "whole-value", "deleted", "pre-image", "insert"]) {
      expect(metrics).toMatch(new RegExp(`flowsync_element_derivations_total\\{case="${how}"\\} [1-9]`));
    }
    expect(metrics).not.toContain(MARK);
    // Still in the database until the delete: checked through the writer on a fresh board.
    await boards.insertOne({ _id: "board-2", graph: { nodes: { a: { credentials: MARK } } } });
    expect((await boards.findOne({ _id: "board-2" }))?.graph?.nodes.a?.credentials).toBe(MARK);
  }, 30_000);

  it("routeBy _id with an ObjectId: the flow is its hex; live, snapshot and a catch-up resume; skipped elements logged without private fields", async () => {
    const oid = new ObjectId();
    const flowId = oid.toHexString();
    const wf = db().collection<{ _id: ObjectId; [k: string]: unknown }>("workflows");
    const live = new SseClient(subscribeUrl(memory, flowId));
    await live.opened();
    await wf.insertOne({ _id: oid, name: "oid", nodes: [node("p"), { type: "no-id", credentials: { apiKey: `${MARK}-skip` } }, node("p")], edges: [] });
    await wf.updateOne({ _id: oid }, { $set: { "nodes.0.position.x": 5 } });
    await wf.updateOne({ _id: oid }, { $push: { nodes: node("q") } } as never);
    await live.until((c) => c.messages.length === 4, 10_000, "the oid flow's events");
    await live.close();
    expect(live.events().map((e) => `${String(e.data.op)} ${String(e.data.id)}`)).toEqual([`insert ${flowId}`, "insert p", "update p", "insert q"]);
    const resumed = new SseClient(subscribeUrl(catchUp, flowId), { lastEventId: live.events()[1]!.id });
    await resumed.until((c) => c.messages.length === 2, 10_000, "the catch-up");
    await resumed.close();
    expect(resumed.events().map((e) => e.id)).toEqual(
      live
        .events()
        .slice(2)
        .map((e) => e.id),
    );
    const snapshot = snapshotDataSchema.parse(await (await fetch(`${memory.url}/api/creative-flowboard/flows/${flowId}/snapshot`)).json());
    expect(snapshot.canvas.node?.map((n) => n.id)).toEqual(["p", "q"]);
    expect(snapshot.canvas.flow?.map((f) => f._id)).toEqual([flowId]);
    // The skipped elements (no id, a repeated id) are logged and counted, without their private fields.
    expect(logs.lines.filter((l) => l.msg === "element skipped").map((l) => l.reason)).toEqual(expect.arrayContaining(["element-key", "element-duplicate"]));
    expect(logs.raw).not.toContain(MARK);
    const metrics = await (await fetch(`${memory.url}/metrics`)).text();
    expect(metrics).toMatch(/flowsync_elements_skipped_total\{reason="element-duplicate"\} [1-9]/);
    // The snapshot left the same two out, and counts them apart from the events' skips.
    expect(metrics).toMatch(/flowsync_snapshot_elements_skipped_total\{reason="element-key"\} [1-9]/);
    expect(metrics).toMatch(/flowsync_snapshot_elements_skipped_total\{reason="element-duplicate"\} [1-9]/);
    expect(metrics).not.toContain(MARK);
  });

  it("a resume from inside a change of a transaction (its changes share one cluster time) gives exactly the rest", async () => {
    const flowId = "wf-txn";
    const wf = db().collection<IdDoc>("workflows");
    await wf.insertOne({ _id: flowId, name: "t", nodes: [node("a"), node("b")], edges: [] });
    const live = new SseClient(subscribeUrl(memory, flowId));
    await live.opened();
    const session = h.client.startSession();
    try {
      await session.withTransaction(async () => {
        await wf.updateOne({ _id: flowId }, { $push: { nodes: { $each: [node("c"), node("d")] } } }, { session });
        await wf.updateOne({ _id: flowId }, { $set: { name: "t2", "nodes.0.position.x": 9 }, $push: { edges: edge("e9", "a", "b") } } as never, { session });
      });
    } finally {
      await session.endSession();
    }
    await live.until((c) => c.messages.length === 5, 10_000, "the transaction's events");
    await live.close();
    const got = live.events();
    expect(got.map((e) => `${String(e.data.op)} ${String(e.data.id)}`)).toEqual(["insert c", "insert d", `update ${flowId}`, "update a", "insert e9"]);
    expect(new Set(got.map((e) => e.data.clusterTime)).size).toBe(1);
    // With a replay buffer of 1, events 0 and 2 are inside a change and resume through a catch-up started at the
    // transaction's cluster time: for event 2 it must drop the first change of the transaction by token order.
    const before = catchUp.subscriptions.counters.replayedFromMongo;
    for (let k = 0; k < got.length - 1; k++) {
      const resumed = new SseClient(subscribeUrl(catchUp, flowId), { lastEventId: got[k]!.id });
      await resumed.until((c) => c.messages.length === got.length - 1 - k, 10_000, `the rest after event ${k}`);
      await resumed.close();
      expect(resumed.events().map((e) => e.id)).toEqual(got.slice(k + 1).map((e) => e.id));
    }
    expect(catchUp.subscriptions.counters.replayedFromMongo - before).toBeGreaterThanOrEqual(2);
  });

  it("one change-stream cursor per instance, embedded collections included", async () => {
    const subs = await Promise.all(
      ["wf-ops", "board-1", "x"].map(async (f) => {
        const c = new SseClient(subscribeUrl(memory, f));
        await c.opened();
        return c;
      }),
    );
    // Each instance holds one stream over workflows, boards and flow_logs together (catch-ups are over).
    await eventually("one stream per instance", async () => expect(await changeStreamCursors(h.client, dbName)).toBe(2));
    await Promise.all(subs.map((c) => c.close()));
  });
});
