import type { Document } from "bson";
import { Aggregator } from "mingo";
import { z } from "zod";
import { beforeAll, describe, expect, it } from "vitest";
import { compileFilters, type CompiledFilters } from "../../src/filters/compile";
import { loadFilters } from "../../src/filters/load";
import { parseFilter } from "../../src/filters/schema";
import { mapChange, type MapResult, type MappedChange, type SkippedChange } from "../../src/events/map-change";
import { flowEventSchema } from "../../src/events/schemas";
import { CHANGE_FIXTURES, loadChange } from "../fixtures/changes";

let shipped: CompiledFilters;
beforeAll(async () => {
  shipped = await loadFilters("filters");
});

const NODE_ID = "6560e1b1c0ffee0000000001";

function mapped(result: MapResult): MappedChange {
  if ("skip" in result) throw new Error(`expected an event, got skip ${result.skip}: ${result.detail}`);
  // Every event we produce must satisfy the wire contract clients parse with.
  expect(flowEventSchema.parse(result.event)).toEqual(result.event);
  return result;
}

function skipped(result: MapResult): SkippedChange {
  if (!("skip" in result)) throw new Error(`expected a skip, got ${JSON.stringify(result.event)}`);
  return result;
}

describe("mapChange: recorded fixtures, as the driver delivers them and unpromoted", () => {
  for (const form of ["driver", "raw"] as const) {
    it(`maps an insert to SYNC_CANVAS with plain JSON values (${form})`, () => {
      const { event, flowId, token, collection } = mapped(mapChange(loadChange("insert", form), shipped.byCollection));
      expect(flowId).toBe("flow-a");
      expect(collection).toBe("nodes");
      expect(token).toBe(loadChange("insert")._id._data);
      expect(event).toEqual({
        type: "SYNC_CANVAS",
        data: {
          flowId: "flow-a",
          op: "insert",
          id: NODE_ID,
          entity: "node",
          clusterTime: "1700848049.1",
          doc: {
            _id: NODE_ID,
            flowId: "flow-a",
            type: "llm",
            position: { x: 120.5, y: 80 },
            data: { label: "Summarize", temperature: 0.7, tags: ["a", "b", "c"], cost: "0.0031" },
            createdAt: "2023-11-24T17:47:29.000Z",
          },
        },
      });
    });
  }

  it("maps an update with its changes and the looked-up document", () => {
    const { event } = mapped(mapChange(loadChange("update"), shipped.byCollection));
    expect(event.data.op).toBe("update");
    expect(event.data).toMatchObject({
      changes: { set: { "position.x": 200, "data.label": "Summarise" }, unset: ["data.temperature"], truncated: [{ field: "data.tags", newSize: 1 }] },
      doc: { position: { x: 200, y: 80 } },
    });
  });

  it("maps a replace with the new document", () => {
    const { event } = mapped(mapChange(loadChange("replace"), shipped.byCollection));
    expect(event.data).toMatchObject({ op: "replace", entity: "edge", doc: { source: NODE_ID } });
    expect(event.data).not.toHaveProperty("changes");
  });

  it("skips lifecycle events but still reports their token", () => {
    for (const name of ["drop", "rename", "dropDatabase", "invalidate"]) {
      const result = skipped(mapChange(loadChange(name), shipped.byCollection));
      expect(result).toEqual({ skip: "lifecycle", detail: name, token: loadChange(name)._id._data });
    }
  });

  it("never emits a private field, even without the pipeline in front (second line of defence)", () => {
    for (const name of CHANGE_FIXTURES) {
      const result = mapChange(loadChange(name), shipped.byCollection, () => "flow-a");
      expect(JSON.stringify(result)).not.toMatch(/secrets[".]|_internal|sk-/);
    }
  });
});

describe("mapChange: dotted update keys under a private field", () => {
  it("strips them from changes.set, changes.unset and changes.truncated", () => {
    const { event } = mapped(mapChange(loadChange("update-dotted-private"), shipped.byCollection));
    expect(event.data.op === "update" && event.data.changes).toEqual({
      set: { "data.label": "Rotated", secretsCount: 1 },
      unset: ["data.note"],
    });
    expect(event.data.doc).not.toHaveProperty("secrets");
    expect(event.data.doc).toHaveProperty("secretsCount", 1);
  });

  it("gives the same event whether or not the pipeline already redacted the change", () => {
    const raw = loadChange("update-dotted-private");
    const [piped] = new Aggregator(shipped.pipeline as Document[]).run([raw]) as Document[];
    expect(mapChange(piped, shipped.byCollection)).toEqual(mapChange(raw, shipped.byCollection));
  });
});

describe("mapChange: routing", () => {
  it("routes a delete by its pre-image", () => {
    const { flowId, event } = mapped(mapChange(loadChange("delete-pre-image"), shipped.byCollection, () => "wrong"));
    expect(flowId).toBe("flow-b");
    expect(event.data).toMatchObject({ op: "delete", entity: "edge", doc: null });
  });

  it("routes a delete without pre-image through the caller's id → flowId cache", () => {
    const seen: [string, string][] = [];
    const lookup = (id: string, collection: string) => (seen.push([id, collection]), "flow-a");
    const { flowId, event } = mapped(mapChange(loadChange("delete"), shipped.byCollection, lookup));
    expect(flowId).toBe("flow-a");
    expect(seen).toEqual([[NODE_ID, "nodes"]]);
    expect(event.data).toEqual({ flowId: "flow-a", op: "delete", id: NODE_ID, entity: "node", clusterTime: "1700848049.5", doc: null });
  });

  it("skips an unroutable delete (no pre-image, not in the cache)", () => {
    expect(skipped(mapChange(loadChange("delete"), shipped.byCollection, () => undefined)).skip).toBe("unroutable");
    expect(skipped(mapChange(loadChange("delete"), shipped.byCollection)).skip).toBe("unroutable");
  });

  it("skips a document without flowId, naming the collection and id", () => {
    const change = loadChange("insert");
    delete change.fullDocument.flowId;
    const result = skipped(mapChange(change, shipped.byCollection, () => "flow-a"));
    expect(result.skip).toBe("unroutable");
    expect(result.detail).toContain(`nodes ${NODE_ID}`);
    expect(result.token).toBe(change._id._data);
  });

  it("routes an update whose document is gone by the pre-image, then the cache", () => {
    const change = { ...loadChange("update"), fullDocument: null };
    expect(mapped(mapChange(change, shipped.byCollection, () => "flow-c")).flowId).toBe("flow-c");
    const withPre = { ...change, fullDocumentBeforeChange: { flowId: "flow-d" } };
    const result = mapped(mapChange(withPre, shipped.byCollection, () => "flow-c"));
    expect(result.flowId).toBe("flow-d");
    expect(result.event.data.doc).toBeNull();
  });

  const invalid: [string, unknown][] = [
    ["an empty string", ""],
    ["a number", 42],
    ["null", null],
    ["an object", { $oid: "x" }],
    ["control characters", "flow\nA"],
    ["a too long string", "f".repeat(300)],
  ];
  for (const [name, value] of invalid) {
    it(`skips a flowId that is ${name} as flowId-invalid`, () => {
      const change = loadChange("insert");
      change.fullDocument.flowId = value;
      expect(skipped(mapChange(change, shipped.byCollection)).skip).toBe("flowId-invalid");
    });
  }

  it("follows a dotted routeBy and a custom field", () => {
    const rules = compileFilters([parseFilter({ collection: "runs", event: "EXECUTION_UPDATE", routeBy: "meta.board" }, "runs.json")]);
    const change = { ...loadChange("insert"), ns: { db: "flowboard", coll: "runs" }, fullDocument: { meta: { board: "b-1" } } };
    const { event } = mapped(mapChange(change, rules.byCollection));
    expect(event).toMatchObject({ type: "EXECUTION_UPDATE", data: { flowId: "b-1" } });
    expect(event.data).not.toHaveProperty("entity");
  });
});

describe("mapChange: filters and schemas", () => {
  it("skips a document that fails the filter's schema, with zod's message", () => {
    const change = loadChange("insert");
    change.fullDocument.position = { x: "left" };
    const result = skipped(mapChange(change, shipped.byCollection));
    expect(result.skip).toBe("schema");
    expect(result.detail).toMatch(/filters\/nodes\.ts/);
    expect(result.detail).toMatch(/position/);
  });

  it("sends the document as stored: schema defaults and unknown-field stripping do not apply", () => {
    const rules = compileFilters([
      parseFilter({ collection: "nodes", event: "LOG_STREAM", document: z.object({ flowId: z.string(), x: z.number().default(1) }) }, "n.ts"),
    ]);
    const { event } = mapped(mapChange(loadChange("insert"), rules.byCollection));
    expect(event.data.doc).not.toHaveProperty("x");
    expect(event.data.doc).toHaveProperty("type", "llm");
  });

  it("skips collections and operations without a filter as unwatched", () => {
    const rules = compileFilters([parseFilter({ collection: "nodes", event: "LOG_STREAM", operations: ["insert"] }, "n.json")]);
    expect(skipped(mapChange(loadChange("update"), rules.byCollection)).skip).toBe("unwatched");
    expect(skipped(mapChange(loadChange("replace"), rules.byCollection)).skip).toBe("unwatched");
  });
});

describe("mapChange: never throws on bad input", () => {
  const junk: unknown[] = [
    null,
    undefined,
    "insert",
    [],
    {},
    { _id: "x" },
    { _id: { _data: "not hex" }, operationType: "insert" },
    { _id: { _data: "82AA" } },
    { _id: { _data: "82AA" }, operationType: "insert", ns: { coll: "nodes" } },
    { _id: { _data: "82AA" }, operationType: "insert", ns: { coll: "nodes" }, documentKey: { _id: "a" } },
    { ...loadChange("insert"), fullDocument: undefined },
    { ...loadChange("update"), updateDescription: { updatedFields: "x" } },
    { ...loadChange("insert"), clusterTime: "yesterday" },
    {
      _id: { _data: "82AA" },
      get operationType(): string {
        throw new Error("hostile getter");
      },
    },
  ];
  it("turns each malformed change into a skip", () => {
    for (const change of junk) {
      const result = mapChange(change, shipped.byCollection);
      expect(result).toHaveProperty("skip");
      expect(["malformed", "lifecycle", "unwatched"]).toContain((result as SkippedChange).skip);
    }
  });
});
