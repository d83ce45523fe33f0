import { describe, expect, it, vi } from "vitest";
import { createFlowStore, type FlowState } from "../../packages/client/src/store";
import type { DocEvent, SnapshotData } from "flowsync-client";

const T = "1.1";
const snap: SnapshotData = {
  flowId: "f",
  cursor: "1.s.T1_1",
  clusterTime: T,
  canvas: { node: [{ _id: "n1", flowId: "f", position: { x: 1, y: 2 } }], edge: [{ _id: "e1", flowId: "f", source: "n1", target: "n1" }] },
  executions: [{ _id: "x1", flowId: "f", progress: 10 }],
};

const canvas = (op: "insert" | "update" | "replace" | "delete", id: string, doc: Record<string, unknown> | null, entity = "node"): DocEvent =>
  ({
    type: "SYNC_CANVAS",
    data: { flowId: "f", op, id, entity, clusterTime: T, doc, ...(op === "update" ? { changes: { set: {}, unset: [] } } : {}) },
  }) as DocEvent;
const exec = (op: "insert" | "update", id: string, doc: Record<string, unknown> | null): DocEvent =>
  ({
    type: "EXECUTION_UPDATE",
    data: { flowId: "f", op, id, clusterTime: T, doc, ...(op === "update" ? { changes: { set: {}, unset: [] } } : {}) },
  }) as DocEvent;

describe("createFlowStore", () => {
  it("loads a snapshot keyed by id, with the newest execution", () => {
    const store = createFlowStore();
    store.load(snap);
    const s = store.getState();
    expect(Object.keys(s.nodes)).toEqual(["n1"]);
    expect(Object.keys(s.edges)).toEqual(["e1"]);
    expect(s.execution).toMatchObject({ _id: "x1" });
    expect(s.cursor).toBe(snap.cursor);
    expect(s.flowId).toBe("f");
  });

  it("insert/replace/update with doc set the document; update with null doc keeps it until the delete", () => {
    const store = createFlowStore();
    store.load(snap);
    store.apply(canvas("insert", "n2", { _id: "n2", v: 1 }), "c1");
    store.apply(canvas("update", "n2", { _id: "n2", v: 2 }), "c2");
    expect(store.getState().nodes.n2).toEqual({ _id: "n2", v: 2 });
    store.apply(canvas("update", "n2", null), "c3");
    expect(store.getState().nodes.n2).toEqual({ _id: "n2", v: 2 });
    store.apply(canvas("replace", "n2", { _id: "n2", w: 1 }), "c4");
    expect(store.getState().nodes.n2).toEqual({ _id: "n2", w: 1 });
    store.apply(canvas("delete", "n2", null), "c5");
    expect("n2" in store.getState().nodes).toBe(false);
    expect(store.getState().cursor).toBe("c5");
    store.apply(canvas("delete", "e1", null, "edge"));
    expect(store.getState().edges).toEqual({});
  });

  it("is immutable: a change makes new objects only for what changed, and notifies", () => {
    const store = createFlowStore();
    store.load(snap);
    const seen: FlowState[] = [];
    const off = store.subscribe((s) => seen.push(s));
    const before = store.getState();
    store.apply(canvas("update", "n1", { _id: "n1", position: { x: 5, y: 5 } }));
    const after = store.getState();
    expect(after).not.toBe(before);
    expect(after.nodes).not.toBe(before.nodes);
    expect(after.edges).toBe(before.edges);
    expect(before.nodes.n1).toMatchObject({ position: { x: 1, y: 2 } });
    expect(seen).toEqual([after]);
    off();
    store.apply(canvas("delete", "n1", null));
    expect(seen).toHaveLength(1);
  });

  it("execution is the newest by id; logs and unknown entities leave nodes/edges alone", () => {
    const store = createFlowStore();
    store.load(snap);
    store.apply(exec("insert", "x2", { _id: "x2", progress: 0 }));
    store.apply(exec("update", "x1", { _id: "x1", progress: 90 }));
    expect(store.getState().execution).toEqual({ _id: "x2", progress: 0 });
    expect(store.getState().executions.x1).toEqual({ _id: "x1", progress: 90 });
    const before = store.getState();
    store.apply(canvas("insert", "g1", { _id: "g1" }, "group"));
    store.apply({ type: "LOG_STREAM", data: { flowId: "f", op: "insert", id: "l1", clusterTime: T, doc: { _id: "l1" } } } as DocEvent);
    expect(store.getState().nodes).toBe(before.nodes);
    expect(store.getState().edges).toBe(before.edges);
    expect(store.getState().entities.group).toEqual({ g1: { _id: "g1" } });
    expect(store.getState().entities.node).toBe(store.getState().nodes);
  });

  it("keys non-string _ids as their JSON text, like events' id; ids like 'constructor' are plain keys", () => {
    const store = createFlowStore();
    store.load({ ...snap, canvas: { node: [{ _id: 7 }, { _id: "constructor" }] } });
    expect(Object.keys(store.getState().nodes).sort()).toEqual(["7", "constructor"]);
    store.apply(canvas("delete", "7", null));
    store.apply(canvas("delete", "toString", null));
    expect(Object.keys(store.getState().nodes)).toEqual(["constructor"]);
  });

  it("keeps every canvas entity by kind, from the snapshot and from events; an entity called presence stays under entities", () => {
    const store = createFlowStore();
    store.load({ ...snap, canvas: { ...snap.canvas, group: [{ _id: "g1" }], presence: [{ _id: "u1", cursor: { x: 1 } }] } });
    expect(Object.keys(store.getState().entities).sort()).toEqual(["edge", "group", "node", "presence"]);
    expect(store.getState().entities.presence).toEqual({ u1: { _id: "u1", cursor: { x: 1 } } });
    // `presence` is the PRESENCE list, not that entity view.
    expect(store.getState().presence).toEqual([]);
    store.apply(canvas("insert", "c1", { _id: "c1" }, "comment"));
    store.apply(canvas("delete", "g1", null, "group"));
    expect(store.getState().entities.comment).toEqual({ c1: { _id: "c1" } });
    expect(store.getState().entities.group).toEqual({});
  });
});

describe("createFlowStore: presence", () => {
  const frame = (users: Array<{ id: string; connections: number; name?: string }>, joined: string[] = [], left: string[] = []) => ({
    flowId: "f",
    users,
    joined,
    left,
  });

  it("each PRESENCE replaces the list (the first after a reconnect resets it), immutably, and leaves documents alone", () => {
    const store = createFlowStore();
    store.load(snap);
    const before = store.getState();
    const seen: unknown[] = [];
    store.subscribe((s) => seen.push(s.presence));
    store.setPresence(
      frame(
        [
          { id: "a", name: "A", connections: 2 },
          { id: "b", connections: 1 },
        ],
        ["a", "b"],
      ),
    );
    expect(store.getState().presence).toEqual([
      { id: "a", name: "A", connections: 2 },
      { id: "b", connections: 1 },
    ]);
    expect(store.getState().nodes).toBe(before.nodes);
    expect(store.getState().cursor).toBe(before.cursor);
    // A reconnect's first frame has empty joined/left: the list is whatever it says.
    store.setPresence(frame([{ id: "c", connections: 1 }]));
    expect(store.getState().presence).toEqual([{ id: "c", connections: 1 }]);
    expect(seen).toHaveLength(2);
    expect(before.presence).toEqual([]);
  });
});

const log = (op: "insert" | "update" | "delete", id: string, doc: Record<string, unknown> | null): DocEvent =>
  ({ type: "LOG_STREAM", data: { flowId: "f", op, id, clusterTime: T, doc, ...(op === "update" ? { changes: { set: {}, unset: [] } } : {}) } }) as DocEvent;
const chunk = (id: string, text: string, nodeId = "n1", executionId = "x1") => log("insert", id, { _id: id, flowId: "f", executionId, nodeId, chunk: text });

describe("createFlowStore: LOG_STREAM text", () => {
  it("per (execution, node), chunks in order, never doubled by a replay or a snapshot's copy", () => {
    const store = createFlowStore();
    store.load({ ...snap, logs: [{ _id: "l1", executionId: "x1", nodeId: "n1", chunk: "Hel" }] });
    store.apply(chunk("l1", "Hel")); // the snapshot's chunk again
    store.apply(chunk("l2", "lo "));
    store.apply(chunk("m1", "other", "n2"));
    store.apply(chunk("l2", "lo ")); // replayed
    store.apply(chunk("l3", "world"));
    const { logs } = store.getState();
    expect(logs.x1?.n1).toEqual({ executionId: "x1", nodeId: "n1", text: "Hello world", chunks: 3, truncated: false });
    expect(logs.x1?.n2?.text).toBe("other");
    // The text records what was streamed: a later update or delete of a chunk leaves it.
    const before = store.getState().logs;
    store.apply(log("update", "l3", { _id: "l3", executionId: "x1", nodeId: "n1", chunk: "there" }));
    store.apply(log("delete", "l2", null));
    expect(store.getState().logs).toBe(before);
  });

  it("keeps the last maxLogChars characters per (execution, node); a replay of an old chunk is not appended", () => {
    const store = createFlowStore({ maxLogChars: 10 });
    for (let i = 0; i < 6; i++) store.apply(chunk(`c${i}`, `${i}abc`));
    const entry = store.getState().logs.x1!.n1!;
    expect(entry).toEqual({ executionId: "x1", nodeId: "n1", text: "bc4abc5abc", chunks: 6, truncated: true });
    store.apply(chunk("c0", "0abc"));
    expect(store.getState().logs.x1!.n1).toBe(entry);
  });
});

describe("createFlowStore: optimistic changes", () => {
  it("shows a patch at once; the server's change for that document replaces it", () => {
    const store = createFlowStore();
    store.load(snap);
    const server = store.getState().nodes.n1;
    const h = store.optimistic("node", "n1", { position: { x: 50, y: 60 } });
    expect(h.active).toBe(true);
    expect(store.getState().nodes.n1).toEqual({ _id: "n1", flowId: "f", position: { x: 50, y: 60 } });
    expect(server).toEqual({ _id: "n1", flowId: "f", position: { x: 1, y: 2 } }); // nothing mutated
    store.apply(canvas("update", "n2", { _id: "n2" })); // another document: the overlay stays
    expect(store.getState().nodes.n1?.position).toEqual({ x: 50, y: 60 });
    store.apply(canvas("update", "n1", { _id: "n1", flowId: "f", position: { x: 49, y: 61 } }));
    expect(store.getState().nodes.n1?.position).toEqual({ x: 49, y: 61 });
    expect(h.active).toBe(false);
  });

  it("a replace-all of a kind (a flow stored as one document) replaces every optimistic edit of that kind", () => {
    const store = createFlowStore();
    store.load(snap);
    const node = store.optimistic("node", "n1", { position: { x: 50, y: 60 } });
    const edge = store.optimistic("edge", "e1", { label: "draft" });
    // The id of a replace-all is the flow document's, not any element's.
    store.apply({
      type: "SYNC_CANVAS",
      data: { ...canvas("replace", "wf1", {}).data, elements: [{ id: "n1", position: { x: 7, y: 8 } }], key: "id" },
    } as DocEvent);
    expect(store.getState().nodes).toEqual({ n1: { id: "n1", position: { x: 7, y: 8 } } });
    expect(node.active).toBe(false);
    expect(edge.active).toBe(true); // another kind: untouched
  });

  it("is dropped by its handle, by a snapshot, or after its timeout", () => {
    vi.useFakeTimers();
    try {
      const store = createFlowStore({ optimisticTimeoutMs: 1000 });
      store.load(snap);
      const a = store.optimistic("node", "n1", null);
      expect(store.getState().nodes.n1).toBeUndefined();
      a.drop();
      expect(store.getState().nodes.n1).toBeDefined();
      const b = store.optimistic("node", "new", { label: "draft" });
      expect(store.getState().nodes.new).toEqual({ _id: "new", label: "draft" });
      store.load(snap);
      expect(b.active).toBe(false);
      expect(store.getState().nodes.new).toBeUndefined();
      const c = store.optimistic("edge", "e1", { label: "x" });
      vi.advanceTimersByTime(999);
      expect(store.getState().edges.e1?.label).toBe("x");
      vi.advanceTimersByTime(1);
      expect(c.active).toBe(false);
      expect(store.getState().edges.e1?.label).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("createFlowStore: status", () => {
  it("records the connection state and why it is retrying; open clears the error", () => {
    const store = createFlowStore();
    const err = new Error("snapshot: network");
    store.setStatus("connecting", err);
    expect(store.getState()).toMatchObject({ status: "connecting", error: err });
    const s = store.getState();
    store.setStatus("connecting");
    expect(store.getState()).toBe(s);
    store.setStatus("open");
    expect(store.getState()).toMatchObject({ status: "open", error: undefined });
  });
});
