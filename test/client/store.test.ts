import { describe, expect, it } from "vitest";
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
  ({ type: "EXECUTION_UPDATE", data: { flowId: "f", op, id, clusterTime: T, doc, ...(op === "update" ? { changes: { set: {}, unset: [] } } : {}) } }) as DocEvent;

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
  });

  it("keys non-string _ids as their JSON text, like events' id; ids like 'constructor' are plain keys", () => {
    const store = createFlowStore();
    store.load({ ...snap, canvas: { node: [{ _id: 7 }, { _id: "constructor" }] } });
    expect(Object.keys(store.getState().nodes).sort()).toEqual(["7", "constructor"]);
    store.apply(canvas("delete", "7", null));
    store.apply(canvas("delete", "toString", null));
    expect(Object.keys(store.getState().nodes)).toEqual(["constructor"]);
  });
});
