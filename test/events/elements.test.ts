/**
 * Embedded entities: every update operator, written through the simulator's own
 * update engine (the same code that serves the driver in integration tests), so the
 * update descriptions are MongoDB's forms; the derived events, applied to the
 * elements before the change, must give exactly the elements after it.
 */
import { Timestamp, type Document } from "bson";
import { Aggregator } from "mingo";
import { describe, expect, it } from "vitest";
import { compileFilters, type CompiledFilters } from "../../src/filters/compile";
import { parseFilter } from "../../src/filters/schema";
import { applyUpdateDescription } from "../../src/events/elements";
import { mapChanges, type MappedChanges } from "../../src/events/map-change";
import { flowEventSchema, type DocEvent, type SyncCanvasData } from "../../src/events/schemas";
import { applyUpdate } from "../../src/mongo/sim/apply-update";
import { describeOperatorUpdate, describeUpdate } from "../../src/mongo/sim/update-description";
import { FlowsyncError } from "../../src/errors";

const FILTER = {
  collection: "workflows",
  event: "SYNC_CANVAS",
  entity: "flow",
  routeBy: "_id",
  privateFields: ["secrets"],
  entities: {
    nodes: { entity: "node", key: "id", privateFields: ["credentials"] },
    edges: { entity: "edge" },
  },
};
const compiled: CompiledFilters = compileFilters([parseFilter(FILTER, "workflows.json")]);
const rules = compiled.byCollection;

const node = (id: string, x = 0, extra: Document = {}) => ({ id, type: "llm", position: { x, y: 0 }, credentials: { apiKey: `k-${id}` }, ...extra });
const edge = (id: string, source: string, target: string) => ({ id, source, target });

function baseDoc(): Document {
  return {
    _id: "wf1",
    name: "Flow",
    secrets: { token: "s" },
    nodes: [node("a", 0), node("b", 10), node("c", 20)],
    edges: [edge("e1", "a", "b"), edge("e2", "b", "c")],
    viewport: { x: 0, y: 0, zoom: 1 },
  };
}

let seq = 0;
function change(op: string, extra: Document): Document {
  seq++;
  return {
    _id: { _data: `82${seq.toString(16).toUpperCase().padStart(16, "0")}2B` },
    operationType: op,
    ns: { db: "flowboard", coll: "workflows" },
    documentKey: { _id: "wf1" },
    clusterTime: new Timestamp({ t: 1_800_000_000, i: seq }),
    ...extra,
  };
}

/** The change event the server would send for `u` on `before`, with the pre-image and an updateLookup post-image. */
function updateEvent(before: Document, u: Document | Document[], opts: { arrayFilters?: Document[]; query?: Document; pre?: boolean } = {}) {
  const after = applyUpdate(before, u, opts);
  const updateDescription = Array.isArray(u) ? describeUpdate(before, after) : describeOperatorUpdate(before, after, u, opts.arrayFilters);
  const event = change("update", { updateDescription, fullDocument: after, ...(opts.pre === false ? {} : { fullDocumentBeforeChange: before }) });
  return { event, after, updateDescription };
}

function mapped(event: Document): MappedChanges {
  const result = mapChanges(event, rules);
  if ("skip" in result) throw new Error(`skipped: ${result.skip} ${result.detail}`);
  for (const e of result.events) expect(flowEventSchema.parse(e)).toEqual(e);
  // Never a private field, anywhere in what goes out.
  expect(JSON.stringify(result.events)).not.toMatch(/credentials|apiKey|secrets/);
  return result;
}

type Kinds = Record<string, Record<string, Document>>;

/** The elements of a stored document as a store keeps them: kind → id → element without private fields. */
function elementsOf(doc: Document | undefined): Kinds {
  const out: Kinds = { node: {}, edge: {} };
  for (const [path, kind] of [
    ["nodes", "node"],
    ["edges", "edge"],
  ] as const) {
    for (const el of (doc?.[path] ?? []) as Document[]) {
      const { credentials: _c, ...shown } = el;
      out[kind]![String(el.id)] = kind === "node" ? shown : el;
    }
  }
  return out;
}

/** Applies element events as the client store does (per id, or replace-all). */
function applyEvents(start: Kinds, events: readonly DocEvent[]): Kinds {
  const out: Kinds = structuredClone(start);
  for (const { data } of events) {
    if (data.flowId !== "wf1" || !("entity" in data) || data.entity === "flow") continue;
    const kind = (out[data.entity] ??= {});
    if (data.elements) {
      out[data.entity] = Object.fromEntries(data.elements.map((e) => [String(e[data.key ?? "id"]), e]));
    } else if (data.op === "delete") delete kind[data.id];
    else if (data.doc) kind[data.id] = data.doc;
  }
  return out;
}

function expectExact(before: Document, u: Document | Document[], opts: { arrayFilters?: Document[]; query?: Document } = {}) {
  const { event, after } = updateEvent(before, u, opts);
  const result = mapped(event);
  expect(applyEvents(elementsOf(before), result.events)).toEqual(elementsOf(after));
  expect(result.derivations).toEqual(["pre-image", "pre-image"]);
  // Element events only for elements whose content changed.
  for (const data of canvas(result.events)) {
    if (data.entity === "flow" || data.op !== "update") continue;
    const old = elementsOf(before)[data.entity]![data.id];
    expect(JSON.stringify(old)).not.toBe(JSON.stringify(data.doc));
  }
  return result;
}

const canvas = (events: readonly DocEvent[]) => events.map((e) => e.data as SyncCanvasData);
const summary = (events: readonly DocEvent[]) => events.map(({ data }) => `${data.op} ${"entity" in data ? data.entity : "?"} ${data.id}`);

describe("embedded entities: one event per changed element, for every update operator", () => {
  it("$set inside one element: one update, changes relative to the element", () => {
    const { events } = expectExact(baseDoc(), { $set: { "nodes.1.position.x": 210 } });
    expect(summary(events)).toEqual(["update node b"]);
    const data = events[0]!.data;
    expect(data.op === "update" && data.changes).toEqual({ set: { "position.x": 210 }, unset: [] });
    expect(data.doc).toEqual({ id: "b", type: "llm", position: { x: 210, y: 0 } });
  });

  it("$push, $addToSet (new and existing), $pull, $pullAll, $pop (both ends)", () => {
    expect(summary(expectExact(baseDoc(), { $push: { nodes: node("d", 30) } }).events)).toEqual(["insert node d"]);
    expect(summary(expectExact(baseDoc(), { $push: { nodes: { $each: [node("d"), node("e")], $position: 0 } } }).events)).toEqual([
      "insert node d",
      "insert node e",
    ]);
    expect(summary(expectExact(baseDoc(), { $addToSet: { edges: edge("e3", "a", "c") } }).events)).toEqual(["insert edge e3"]);
    expect(summary(expectExact(baseDoc(), { $addToSet: { edges: edge("e1", "a", "b") } }).events)).toEqual([]);
    expect(summary(expectExact(baseDoc(), { $pull: { nodes: { id: "b" } } }).events)).toEqual(["delete node b"]);
    expect(summary(expectExact(baseDoc(), { $pullAll: { edges: [edge("e1", "a", "b"), edge("e2", "b", "c")] } }).events)).toEqual([
      "delete edge e1",
      "delete edge e2",
    ]);
    expect(summary(expectExact(baseDoc(), { $pop: { nodes: 1 } }).events)).toEqual(["delete node c"]);
    expect(summary(expectExact(baseDoc(), { $pop: { nodes: -1 } }).events)).toEqual(["delete node a"]);
  });

  it("positional $, $[] and $[<id>] with arrayFilters", () => {
    expect(summary(expectExact(baseDoc(), { $set: { "nodes.$.position.y": 5 } }, { query: { "nodes.id": "c" } }).events)).toEqual(["update node c"]);
    expect(summary(expectExact(baseDoc(), { $inc: { "nodes.$[].position.y": 1 } }).events)).toEqual(["update node a", "update node b", "update node c"]);
    const filtered = expectExact(baseDoc(), { $set: { "nodes.$[n].type": "tool" } }, { arrayFilters: [{ "n.position.x": { $gte: 10 } }] });
    expect(summary(filtered.events)).toEqual(["update node b", "update node c"]);
    const one = expectExact(baseDoc(), { $set: { "edges.$[e].target": "a" } }, { arrayFilters: [{ "e.id": "e2" }] });
    expect(summary(one.events)).toEqual(["update edge e2"]);
  });

  it("reordering gives no event; a key change is a delete plus an insert", () => {
    const reordered = expectExact(baseDoc(), { $set: { nodes: [node("c", 20), node("a", 0), node("b", 10)] } });
    expect(reordered.events).toEqual([]);
    expect(summary(expectExact(baseDoc(), { $set: { "nodes.0.id": "a2" } }).events)).toEqual(["delete node a", "insert node a2"]);
  });

  it("a pipeline-style update (truncatedArrays with empty updatedFields and removedFields)", () => {
    const pipeline = [{ $set: { nodes: { $slice: ["$nodes", 2] } } }];
    const { event, updateDescription } = updateEvent(baseDoc(), pipeline);
    expect(updateDescription).toMatchObject({ updatedFields: {}, removedFields: [], truncatedArrays: [{ field: "nodes", newSize: 2 }] });
    expect(summary(mapped(event).events)).toEqual(["delete node c"]);
    // Reversed (no element changes content) and one element changed: only that one.
    const changeA = { $map: { input: "$nodes", as: "n", in: { $cond: [{ $eq: ["$$n.id", "a"] }, { $mergeObjects: ["$$n", { type: "tool" }] }, "$$n"] } } };
    expect(summary(expectExact(baseDoc(), [{ $set: { "viewport.zoom": 2, nodes: { $reverseArray: changeA } } }]).events)).toEqual([
      "update flow wf1",
      "update node a",
    ]);
  });

  it("both shrink forms (truncatedArrays, or the whole array in updatedFields) give the same events", () => {
    const before = baseDoc();
    const viaPull = updateEvent(before, { $pull: { nodes: { id: { $in: ["b", "c"] } } } });
    const viaPipeline = updateEvent(before, [{ $set: { nodes: { $slice: ["$nodes", 1] } } }]);
    expect(viaPull.updateDescription.updatedFields).toHaveProperty("nodes");
    expect(viaPipeline.updateDescription.truncatedArrays).toEqual([{ field: "nodes", newSize: 1 }]);
    const strip = (r: MappedChanges) => r.events.map((e) => ({ ...e, data: { ...e.data, clusterTime: "" } }));
    expect(strip(mapped(viaPull.event))).toEqual(strip(mapped(viaPipeline.event)));
    expect(summary(mapped(viaPull.event).events)).toEqual(["delete node b", "delete node c"]);
  });

  it("other fields: one document-level event first, without the entity arrays; nothing for untouched elements", () => {
    const { events } = expectExact(baseDoc(), { $set: { name: "Renamed", "viewport.zoom": 2, "nodes.0.position.x": 1 } });
    expect(summary(events)).toEqual(["update flow wf1", "update node a"]);
    const data = events[0]!.data;
    expect(data.op === "update" && data.changes).toEqual({ set: { name: "Renamed", "viewport.zoom": 2 }, unset: [] });
    expect(data.doc).toEqual({ _id: "wf1", name: "Renamed", viewport: { x: 0, y: 0, zoom: 2 } });
  });

  it("a change to a private field inside an element, or of the document, gives no event", () => {
    expect(expectExact(baseDoc(), { $set: { "nodes.2.credentials.apiKey": "new", "secrets.token": "t2" } }).events).toEqual([]);
  });

  it("replaceOne, insert and delete of the document", () => {
    const before = baseDoc();
    const replacement = { name: "Flow", nodes: [node("a", 5), node("z")], edges: [edge("e1", "a", "b")], viewport: before.viewport };
    const after = applyUpdate(before, replacement);
    const replaced = mapped(change("replace", { fullDocument: after, fullDocumentBeforeChange: before }));
    expect(summary(replaced.events)).toEqual(["replace flow wf1", "delete node b", "delete node c", "update node a", "insert node z", "delete edge e2"]);
    expect(applyEvents(elementsOf(before), replaced.events)).toEqual(elementsOf(after));

    const inserted = mapped(change("insert", { fullDocument: before }));
    expect(summary(inserted.events)).toEqual(["insert flow wf1", "insert node a", "insert node b", "insert node c", "insert edge e1", "insert edge e2"]);
    expect(inserted.events[0]!.data.doc).toEqual({ _id: "wf1", name: "Flow", viewport: { x: 0, y: 0, zoom: 1 } });

    const deleted = mapped(change("delete", { fullDocumentBeforeChange: before }));
    expect(summary(deleted.events)).toEqual(["delete flow wf1", "delete node a", "delete node b", "delete node c", "delete edge e1", "delete edge e2"]);
  });

  it("an object keyed by id works like an array, the property name being the id", () => {
    const keyed = compileFilters([
      parseFilter(
        { collection: "boards", event: "SYNC_CANVAS", entity: "board", routeBy: "_id", entities: { "graph.nodes": { entity: "node" } } },
        "boards.json",
      ),
    ]).byCollection;
    const before = { _id: "b1", graph: { nodes: { a: { label: "A" }, b: { label: "B" } } } };
    const after = applyUpdate(before, { $set: { "graph.nodes.b.label": "B2", "graph.nodes.c": { label: "C" } }, $unset: { "graph.nodes.a": 1 } });
    const ud = describeOperatorUpdate(before, after, {
      $set: { "graph.nodes.b.label": "B2", "graph.nodes.c": { label: "C" } },
      $unset: { "graph.nodes.a": 1 },
    });
    const result = mapChanges(
      change("update", {
        ns: { db: "d", coll: "boards" },
        documentKey: { _id: "b1" },
        updateDescription: ud,
        fullDocumentBeforeChange: before,
        fullDocument: after,
      }),
      keyed,
    );
    if ("skip" in result) throw new Error(result.detail);
    expect(result.events.map((e) => [e.data.op, e.data.id, e.data.doc])).toEqual([
      ["delete", "a", null],
      ["update", "b", { label: "B2", id: "b" }],
      ["insert", "c", { label: "C", id: "c" }],
    ]);
  });
});

describe("embedded entities: the traps", () => {
  it("a bad element already there is not reported again when it only moves; a second one like it is", () => {
    const before = { ...baseDoc(), nodes: [node("a"), { type: "no-id" }] };
    const moved = mapped(updateEvent(before, { $push: { nodes: { $each: [node("z")], $position: 0 } } }).event);
    expect(summary(moved.events)).toEqual(["insert node z"]);
    expect(moved.skips).toEqual([]);
    const another = mapped(updateEvent(before, { $push: { nodes: { $each: [{ type: "no-id-2" }], $position: 0 } } }).event);
    expect(another.skips.map((k) => k.reason)).toEqual(["element-key"]);
  });

  it("a replaceOne that only reorders an element's fields gives no event for it", () => {
    const before = baseDoc();
    const nodes = (before.nodes as Document[]).map((n) => (n.id === "b" ? { position: n.position, type: n.type, credentials: n.credentials, id: n.id } : n));
    const { event } = updateEvent(before, { ...before, nodes, name: "Renamed" });
    expect(summary(mapped(change("replace", { fullDocument: event.fullDocument, fullDocumentBeforeChange: before })).events)).toEqual(["replace flow wf1"]);
  });

  it("an id with a dot in an object keyed by id: a counted skip, never an invented element holding its private fields", () => {
    const keyed = compileFilters([
      parseFilter(
        {
          collection: "boards",
          event: "SYNC_CANVAS",
          entity: "board",
          routeBy: "_id",
          entities: { nodes: { entity: "node", privateFields: ["credentials"] } },
        },
        "boards.json",
      ),
    ]).byCollection;
    const before = { _id: "b1", nodes: { "n.1": { label: "N", credentials: { apiKey: "SECRET" } }, m: { label: "M" } } };
    // What MongoDB reports for an update of the field of element "n.1" without showExpandedEvents: no disambiguatedPaths.
    const ud = { updatedFields: { "nodes.n.1.credentials.apiKey": "SECRET2", "nodes.m.label": "M2" }, removedFields: [], truncatedArrays: [] };
    const after = { _id: "b1", nodes: { "n.1": { label: "N", credentials: { apiKey: "SECRET2" } }, m: { label: "M2" } } };
    for (const images of [{ fullDocumentBeforeChange: before, fullDocument: after }, { fullDocument: after }]) {
      const result = mapChanges(change("update", { ns: { db: "d", coll: "boards" }, documentKey: { _id: "b1" }, updateDescription: ud, ...images }), keyed);
      if ("skip" in result) throw new Error(result.detail);
      expect(JSON.stringify(result.events)).not.toContain("SECRET");
      expect(result.events.map((e) => e.data.id)).not.toContain("n");
      expect(result.derivations).toEqual(["fullDocumentBeforeChange" in images ? "ambiguous-path" : "lookup"]);
      const replace = result.events[0]!.data as SyncCanvasData & { elements?: Document[] };
      expect(replace.elements).toEqual([{ label: "M2", id: "m" }]);
      expect(result.skips.map((k) => k.reason)).toContain("element-key");
    }
  });

  it("an element without a valid key, and a second element with the same key, are counted skips; the rest flows", () => {
    const before = baseDoc();
    const { event } = updateEvent(before, { $push: { nodes: { $each: [{ type: "no-id" }, node("a", 99), node("d")] } } });
    const result = mapped(event);
    expect(summary(result.events)).toEqual(["insert node d"]);
    expect(result.skips.map((s) => s.reason)).toEqual(["element-key", "element-duplicate"]);
    expect(JSON.stringify(result.skips)).not.toMatch(/apiKey|k-a/);
  });

  it("applying the update description to the pre-image honours disambiguatedPaths (a numeric field name is not an index)", () => {
    const pre = { _id: 1, nodes: { "0": { id: "x", v: 1 } } };
    expect(
      applyUpdateDescription(pre, {
        updatedFields: { "nodes.0.v": 2 },
        removedFields: [],
        truncatedArrays: [],
        disambiguatedPaths: { "nodes.0.v": ["nodes", "0", "v"] },
      }),
    ).toEqual({
      _id: 1,
      nodes: { "0": { id: "x", v: 2 } },
    });
    const arr = { _id: 1, nodes: [{ id: "x" }] };
    expect(applyUpdateDescription(arr, { updatedFields: { "nodes.2": { id: "z" } }, removedFields: [], truncatedArrays: [] })).toEqual({
      _id: 1,
      nodes: [{ id: "x" }, null, { id: "z" }],
    });
  });

  it("does not read the updateLookup document when a pre-image exists: later writes do not leak into this change", () => {
    const before = baseDoc();
    const { event } = updateEvent(before, { $set: { "nodes.0.position.x": 1 } });
    // The document as looked up later: node b was moved meanwhile, by a change of its own.
    (event.fullDocument as Document).nodes[1].position.x = 999;
    expect(summary(mapped(event).events)).toEqual(["update node a"]);
  });
});

describe("embedded entities without a pre-image: which case yields which event", () => {
  it("untouched kinds give nothing; a whole array set or removed gives an exact replace-all; otherwise the lookup document", () => {
    const before = baseDoc();
    const untouched = mapped(updateEvent(before, { $set: { name: "x" } }, { pre: false }).event);
    expect(summary(untouched.events)).toEqual(["update flow wf1"]);
    expect(untouched.derivations).toEqual(["untouched", "untouched"]);

    const whole = mapped(updateEvent(before, { $pull: { nodes: { id: "a" } } }, { pre: false }).event);
    expect(whole.derivations).toEqual(["whole-value", "untouched"]);
    expect(canvas(whole.events).map((d) => [d.op, d.id, d.entity, d.doc, d.elements?.map((n) => n.id)])).toEqual([["replace", "wf1", "node", {}, ["b", "c"]]]);

    const removed = mapped(updateEvent(before, { $unset: { edges: 1 } }, { pre: false }).event);
    expect(removed.derivations).toEqual(["untouched", "whole-value"]);
    expect(removed.events.map((e) => "elements" in e.data && e.data.elements)).toEqual([[]]);

    const lookup = mapped(updateEvent(before, { $set: { "nodes.1.position.x": 3 } }, { pre: false }).event);
    expect(lookup.derivations).toEqual(["lookup", "untouched"]);
    expect(applyEvents(elementsOf(before), lookup.events)).toEqual(elementsOf(applyUpdate(before, { $set: { "nodes.1.position.x": 3 } })));

    const gone = mapChanges({ ...updateEvent(before, { $set: { "nodes.1.position.x": 3 } }, { pre: false }).event, fullDocument: null }, rules);
    expect("skip" in gone ? gone : gone.derivations).toEqual(["no-image", "untouched"]);
  });

  it("replace and delete without a pre-image are exact replace-alls", () => {
    const before = baseDoc();
    const replaced = mapped(change("replace", { fullDocument: { ...before, nodes: [node("q")] } }));
    expect(replaced.derivations).toEqual(["new-document", "new-document"]);
    expect(summary(replaced.events)).toEqual(["replace flow wf1", "replace node wf1", "replace edge wf1"]);
    const deleted = mapped(change("delete", {}));
    expect(deleted.derivations).toEqual(["deleted", "deleted"]);
    expect(applyEvents(elementsOf(before), deleted.events)).toEqual({ node: {}, edge: {} });
  });
});

describe("embedded entities: private fields removed inside MongoDB (the compiled pipeline)", () => {
  const piped = (event: Document) => (new Aggregator(compiled.pipeline as Document[]).run([event]) as Document[])[0]!;

  it("from the images, whole arrays, whole elements, keys above the path and dotted keys under an element", () => {
    const before = baseDoc();
    for (const u of [
      { $set: { "nodes.3": node("d") } },
      { $set: { nodes: [node("x")] } },
      { $set: { "nodes.1.credentials.apiKey": "new", "nodes.1.position.x": 4 } },
      { $set: { "nodes.1.credentials": { apiKey: "n" } } },
      { $unset: { "nodes.0.credentials": 1 } },
      { $push: { nodes: node("d") } },
    ] as Document[]) {
      const { event } = updateEvent(before, u);
      const out = piped(event);
      expect(JSON.stringify(out)).not.toMatch(/credentials|apiKey|secrets/);
      // The second line of defence gives the same events either way.
      expect(mapChanges(out, rules)).toEqual(mapChanges(event, rules));
    }
    const inserted = piped(change("insert", { fullDocument: before }));
    expect(inserted.fullDocument.nodes.map((n: Document) => Object.keys(n))).toEqual([
      ["id", "type", "position"],
      ["id", "type", "position"],
      ["id", "type", "position"],
    ]);
    expect(Object.keys(inserted.fullDocument)).toEqual(["_id", "name", "nodes", "edges", "viewport"]);
    expect(piped(change("delete", {}))).not.toHaveProperty("fullDocument");
    // Another watched collection's `nodes` is not an entity collection: its elements pass untouched.
    const both = compileFilters([
      parseFilter(FILTER, "workflows.json"),
      parseFilter({ collection: "others", event: "SYNC_CANVAS", entity: "other" }, "others.json"),
    ]);
    const otherDoc = { _id: "x", nodes: [{ id: "a", credentials: 1 }] };
    const [other] = new Aggregator(both.pipeline as Document[]).run([
      { ...change("insert", { fullDocument: otherDoc }), ns: { db: "flowboard", coll: "others" } },
    ]) as Document[];
    expect(other!.fullDocument).toEqual(otherDoc);
  });

  it("under a nested path, and in the value of a key above it", () => {
    const nested = compileFilters([
      parseFilter(
        {
          collection: "flows",
          event: "SYNC_CANVAS",
          entity: "flow",
          routeBy: "_id",
          entities: { "data.nodes": { entity: "node", privateFields: ["credentials"] } },
        },
        "flows.json",
      ),
    ]);
    const doc = { _id: "f", version: 1, data: { nodes: [node("a")], edges: [] } };
    const event = change("update", {
      ns: { db: "d", coll: "flows" },
      updateDescription: { updatedFields: { data: doc.data }, removedFields: [], truncatedArrays: [] },
      fullDocument: doc,
      fullDocumentBeforeChange: doc,
    });
    const out = (new Aggregator(nested.pipeline as Document[]).run([event]) as Document[])[0]!;
    expect(JSON.stringify(out)).not.toMatch(/credentials|apiKey/);
    expect(out.fullDocument).toEqual({ _id: "f", version: 1, data: { nodes: [{ id: "a", type: "llm", position: { x: 0, y: 0 } }], edges: [] } });
  });
});

describe("the entities filter format", () => {
  const invalid = (extra: Document, pattern: RegExp) => {
    expect(() => parseFilter({ ...FILTER, ...extra }, "bad.json")).toThrow(FlowsyncError);
    expect(() => parseFilter({ ...FILTER, ...extra }, "bad.json")).toThrow(pattern);
  };

  it("refuses unknown keys, overlapping paths, a private key field, a private entity path, a kind used twice", () => {
    invalid({ entities: { nodes: { entity: "node", kee: "id" } } }, /bad\.json[\s\S]*kee/);
    invalid({ entities: { nodes: { entity: "node" }, "nodes.inner": { entity: "edge" } } }, /overlaps 'nodes'/);
    invalid({ entities: { nodes: { entity: "node", privateFields: ["id"] } } }, /'id' cannot be private/);
    invalid({ entities: { "secrets.nodes": { entity: "node" } } }, /under the private field 'secrets'/);
    invalid({ entities: { nodes: { entity: "node" }, edges: { entity: "node" } } }, /already the entity of 'nodes'/);
    invalid({ entities: { nodes: { entity: "flow" } } }, /document's own entity/);
    invalid({ event: "LOG_STREAM", entity: undefined }, /entities only apply to SYNC_CANVAS/);
    invalid({ entities: { $bad: { entity: "node" } } }, /entities/);
  });

  it("refuses an embedded kind that another filter also produces", () => {
    const nodes = parseFilter({ collection: "nodes", event: "SYNC_CANVAS", entity: "node" }, "nodes.json");
    expect(() => compileFilters([parseFilter(FILTER, "workflows.json"), nodes])).toThrow(/entity 'node' is already produced by workflows\.json/);
  });

  it("applies the defaults", () => {
    expect(rules.get("workflows")!.elements.map((e) => [e.path, e.entity, e.key, [...e.privateFields]])).toEqual([
      ["nodes", "node", "id", ["credentials"]],
      ["edges", "edge", "id", []],
    ]);
  });
});

describe("embedded entities: a bad element is reported once, by the change that brought it", () => {
  it("later changes of the same document do not report it again", () => {
    const before = baseDoc();
    const first = updateEvent(before, { $push: { nodes: { type: "no-id" } } });
    expect(mapped(first.event).skips.map((s) => s.reason)).toEqual(["element-key"]);
    const second = updateEvent(first.after, { $set: { "nodes.0.position.x": 3 } });
    const result = mapped(second.event);
    expect(summary(result.events)).toEqual(["update node a"]);
    expect(result.skips).toEqual([]);
  });
});
