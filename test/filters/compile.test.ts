import type { Document } from "bson";
import { Aggregator } from "mingo";
import { describe, expect, it } from "vitest";
import { compileFilters, flowMatchStage, type CompiledFilters } from "../../src/filters/compile";
import { parseFilter } from "../../src/filters/schema";
import { CHANGE_FIXTURES, loadChange } from "../fixtures/changes";

const spec = (def: Record<string, unknown>, source = `filters/${String(def.collection)}.ts`) => parseFilter(def, source);

const DEFAULT = compileFilters([
  spec({ collection: "nodes", event: "SYNC_CANVAS", entity: "node", privateFields: ["secrets", "_internal"] }),
  spec({ collection: "edges", event: "SYNC_CANVAS", entity: "edge", privateFields: ["secrets"] }),
  spec({ collection: "flow_logs", event: "LOG_STREAM", operations: ["insert"], match: { "fullDocument.level": { $ne: "debug" } } }),
]);

// What the server would emit after our pipeline (mingo is the simulator's engine too).
function run(compiled: CompiledFilters, changes: Document[], extra: Document[] = []): Document[] {
  return new Aggregator([...compiled.pipeline, ...extra] as Document[]).run(changes) as Document[];
}

const change = (coll: string, operationType: string, extra: Document = {}): Document => ({
  _id: { _data: "8265" },
  operationType,
  ns: { db: "flowboard", coll },
  documentKey: { _id: "d1" },
  ...extra,
});

describe("compileFilters: the $match stage", () => {
  it("lets through enabled operations of watched collections only", () => {
    const out = run(DEFAULT, [
      change("nodes", "insert"),
      change("nodes", "delete"),
      change("users", "insert"),
      change("flow_logs", "update"),
      change("flow_logs", "insert", { fullDocument: { level: "info" } }),
    ]);
    expect(out.map((c) => `${c.ns.coll}:${c.operationType}`)).toEqual(["nodes:insert", "nodes:delete", "flow_logs:insert"]);
  });

  it("ANDs a filter's extra match with its collection and operations", () => {
    const out = run(DEFAULT, [
      change("flow_logs", "insert", { fullDocument: { level: "debug" } }),
      change("nodes", "insert", { fullDocument: { level: "debug" } }),
    ]);
    expect(out.map((c) => c.ns.coll)).toEqual(["nodes"]);
  });

  it("lets lifecycle events through for the watcher, but not drops of other collections", () => {
    const names = ["drop", "rename", "dropDatabase", "invalidate"];
    const fixtures = names.map((name) => loadChange(name));
    const other = [change("users", "drop"), change("users", "rename", { to: { db: "flowboard", coll: "people" } })];
    const intoWatched = change("nodes_old", "rename", { to: { db: "flowboard", coll: "nodes" } });
    const out = run(DEFAULT, [...fixtures, ...other, intoWatched]);
    expect(out.map((c) => `${c.operationType}:${c.ns?.coll ?? ""}`)).toEqual([
      "drop:nodes",
      "rename:nodes",
      "dropDatabase:",
      "invalidate:",
      "rename:nodes_old",
    ]);
  });

  it("passes every recorded fixture (they are all on watched collections)", () => {
    expect(
      run(
        DEFAULT,
        CHANGE_FIXTURES.map((name) => loadChange(name)),
      ),
    ).toHaveLength(CHANGE_FIXTURES.length);
  });
});

describe("compileFilters: private fields never leave the pipeline", () => {
  const serialized = (docs: Document[]) => JSON.stringify(docs);

  it("removes them from fullDocument and fullDocumentBeforeChange", () => {
    const [insert, del] = run(DEFAULT, [loadChange("insert"), loadChange("delete-pre-image")]);
    expect(insert?.fullDocument).not.toHaveProperty("secrets");
    expect(insert?.fullDocument).not.toHaveProperty("_internal");
    expect(insert?.fullDocument).toHaveProperty("data.label", "Summarize");
    expect(del?.fullDocumentBeforeChange).not.toHaveProperty("secrets");
    expect(del?.fullDocumentBeforeChange).toHaveProperty("flowId", "flow-b");
  });

  it("removes exact and dotted update keys, removed paths and truncated arrays under them", () => {
    const [update] = run(DEFAULT, [loadChange("update-dotted-private")]);
    expect(update?.updateDescription).toEqual({
      updatedFields: { "data.label": "Rotated", secretsCount: 1 },
      removedFields: ["data.note"],
      truncatedArrays: [],
    });
    expect(serialized([update as Document])).not.toMatch(/sk-|secrets\.|_internal/);
  });

  it("filters disambiguatedPaths when the server sends them (8.2+) and adds nothing otherwise", () => {
    const base = loadChange("update");
    const withPaths = {
      ...base,
      updateDescription: { ...base.updateDescription, disambiguatedPaths: { "secrets.0": ["secrets", "0"], "a.0": ["a", "0"] } },
    };
    const [out, plain] = run(DEFAULT, [withPaths, base]);
    expect(out?.updateDescription.disambiguatedPaths).toEqual({ "a.0": ["a", "0"] });
    expect(plain?.updateDescription).not.toHaveProperty("disambiguatedPaths");
  });

  it("redacts the union of private fields in every watched collection (documented caveat)", () => {
    // `_internal` is private only for nodes, yet the one shared pipeline removes it from edges too.
    const edge = change("edges", "insert", { fullDocument: { flowId: "f", _internal: 1, secrets: 2, keep: 3 } });
    expect(run(DEFAULT, [edge])[0]?.fullDocument).toEqual({ flowId: "f", keep: 3 });
    expect(DEFAULT.privateFields).toEqual(["_internal", "secrets"]);
  });

  it("never touches the change event's _id (the resume token) nor adds fields to other events", () => {
    const inputs = CHANGE_FIXTURES.map((name) => loadChange(name));
    const out = run(DEFAULT, inputs);
    out.forEach((event, i) => {
      expect(event._id).toEqual(inputs[i]?._id);
      if (event.operationType !== "update") expect(event).not.toHaveProperty("updateDescription");
    });
  });

  it("has no redaction stages when no filter declares private fields", () => {
    const compiled = compileFilters([spec({ collection: "flow_logs", event: "LOG_STREAM" })]);
    expect(compiled.pipeline.map((stage) => Object.keys(stage)[0])).toEqual(["$match"]);
  });
});

describe("compileFilters: the result", () => {
  it("is frozen", () => {
    expect(Object.isFrozen(DEFAULT)).toBe(true);
    expect(Object.isFrozen(DEFAULT.pipeline)).toBe(true);
    expect(Object.isFrozen(DEFAULT.pipeline[0])).toBe(true);
    expect(Object.isFrozen(DEFAULT.byCollection.get("nodes"))).toBe(true);
  });

  it("is JSON-serializable (it is sent to the server as is)", () => {
    expect(JSON.parse(JSON.stringify(DEFAULT.pipeline))).toEqual(DEFAULT.pipeline);
  });

  it("refuses two filters for one collection, naming both files", () => {
    const a = spec({ collection: "nodes", event: "LOG_STREAM" }, "filters/a.ts");
    const b = spec({ collection: "nodes", event: "LOG_STREAM" }, "filters/b.json");
    expect(() => compileFilters([a, b])).toThrow(/filters\/b\.json: collection 'nodes' is already watched by filters\/a\.ts/);
  });

  it("refuses an empty filter list", () => {
    expect(() => compileFilters([])).toThrow(/no filters/);
  });
});

describe("flowMatchStage (catch-up streams)", () => {
  it("keeps the flow's changes, unattributable ones and lifecycle events; drops other flows", () => {
    const mine = change("nodes", "insert", { fullDocument: { flowId: "flow-a" } });
    const other = change("nodes", "insert", { fullDocument: { flowId: "flow-b" } });
    const preImage = change("edges", "delete", { fullDocumentBeforeChange: { flowId: "flow-a" } });
    const otherPreImage = change("edges", "delete", { fullDocumentBeforeChange: { flowId: "flow-b" } });
    const blind = change("nodes", "delete");
    const out = run(DEFAULT, [mine, other, preImage, otherPreImage, blind, loadChange("invalidate")], [flowMatchStage(DEFAULT, "flow-a")]);
    expect(out).toEqual([mine, preImage, blind, loadChange("invalidate")]);
  });
});
