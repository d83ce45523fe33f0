import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FlowsyncError } from "../../src/errors";
import { compileFilters } from "../../src/filters/compile";
import { isFilterFileName, loadFilters, readFilterSpecs } from "../../src/filters/load";

const dirs: string[] = [];

async function filterDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "flowsync-filters-"));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return dir;
}

const moduleText = (def: Record<string, unknown>) => `export default ${JSON.stringify(def)};\n`;
const nodes = { collection: "nodes", event: "SYNC_CANVAS", entity: "node", privateFields: ["secrets"] };

async function loadError(dir: string): Promise<FlowsyncError> {
  const err = await loadFilters(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FlowsyncError);
  return err as FlowsyncError;
}

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

describe("loadFilters: the shipped filters/", () => {
  it("loads one rule per default collection with the documented events and entities (docs/filters.md)", async () => {
    const compiled = await loadFilters("filters");
    const summary = [...compiled.byCollection.values()].map((r) => [r.collection, r.event, r.entity ?? null]);
    expect(summary).toEqual([
      ["edges", "SYNC_CANVAS", "edge"],
      ["flow_executions", "EXECUTION_UPDATE", null],
      ["flow_logs", "LOG_STREAM", null],
      ["nodes", "SYNC_CANVAS", "node"],
    ]);
  });

  it("treats secrets and _internal as private everywhere and routes by flowId", async () => {
    const compiled = await loadFilters("filters");
    expect(compiled.privateFields).toEqual(["_internal", "secrets"]);
    for (const rule of compiled.byCollection.values()) {
      expect([...rule.privateFields].sort()).toEqual(["_internal", "secrets"]);
      expect(rule.routeBy).toBe("flowId");
      expect([...rule.operations]).toEqual(["insert", "update", "replace", "delete"]);
      expect(rule.schema).toBeDefined();
      expect(rule.source).toMatch(/^filters\/[a-z-]+\.ts$/);
    }
  });
});

describe("loadFilters: accepted forms", () => {
  it("accepts .mjs and .json filters and applies the defaults", async () => {
    const dir = await filterDir({
      "a.mjs": moduleText(nodes),
      "b.json": JSON.stringify({ collection: "logs", event: "LOG_STREAM" }),
    });
    const rule = (await loadFilters(dir)).byCollection.get("logs");
    expect(rule?.routeBy).toBe("flowId");
    expect([...(rule?.operations ?? [])]).toEqual(["insert", "update", "replace", "delete"]);
    expect(rule?.privateFields.size).toBe(0);
  });

  it("ignores helpers (_*), dotfiles, declaration files and tests", () => {
    expect(["_shared.ts", ".x.json", "a.d.ts", "a.test.ts", "README.md"].filter(isFilterFileName)).toEqual([]);
    expect(["nodes.ts", "a.mts", "b.js", "c.mjs", "d.json"].every(isFilterFileName)).toBe(true);
  });
});

describe("loadFilters: invalid filters stop startup with a message naming the file", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["an unknown key", { ...nodes, privatefields: ["x"] }, /privatefields/],
    ["an unknown event type", { ...nodes, event: "SYNC" }, /event/],
    ["SYNC_CANVAS without entity", { collection: "nodes", event: "SYNC_CANVAS" }, /entity[\s\S]*required for SYNC_CANVAS/],
    ["entity on another event type", { collection: "l", event: "LOG_STREAM", entity: "x" }, /only applies to SYNC_CANVAS/],
    ["an empty routeBy", { ...nodes, routeBy: "" }, /routeBy/],
    ["_id as a private field", { ...nodes, privateFields: ["_id"] }, /_id cannot be private/],
    ["the routing field as private", { ...nodes, privateFields: ["flowId"] }, /cannot be private: events are routed by 'flowId'/],
    ["a dotted private field", { ...nodes, privateFields: ["data.key"] }, /top-level field name/],
    ["an unknown operation", { ...nodes, operations: ["upsert"] }, /operations/],
    ["no operations", { ...nodes, operations: [] }, /at least one operation/],
    ["a document that is not a zod schema", { ...nodes, document: { flowId: "string" } }, /zod schema/],
    ["a match that is not an object", { ...nodes, match: ["x"] }, /plain object/],
  ];
  for (const [problem, def, message] of cases) {
    it(`refuses ${problem}`, async () => {
      const dir = await filterDir({ "nodes.mjs": moduleText(def) });
      const err = await loadError(dir);
      expect(err.code).toBe("E_FILTER_INVALID");
      expect(err.name).toBe("FlowsyncError");
      expect(err.message).toContain(path.join(dir, "nodes.mjs"));
      expect(err.message).toMatch(message);
    });
  }

  it("names both files when two filters watch the same collection", async () => {
    const dir = await filterDir({ "a.mjs": moduleText(nodes), "b.json": JSON.stringify(nodes) });
    const err = await loadError(dir);
    expect(err.message).toContain(path.join(dir, "b.json"));
    expect(err.message).toContain(path.join(dir, "a.mjs"));
    expect(err.message).toContain("already watched");
  });

  it("reports JSON syntax errors with the file name", async () => {
    const dir = await filterDir({ "nodes.json": "{ collection: nodes" });
    expect((await loadError(dir)).message).toMatch(/nodes\.json: not JSON/);
  });

  it("reports a module without default export", async () => {
    const dir = await filterDir({ "nodes.mjs": "export const filter = {};\n" });
    expect((await loadError(dir)).message).toMatch(/nodes\.mjs: no default export/);
  });

  it("reports a module that fails to load", async () => {
    const dir = await filterDir({ "nodes.mjs": "throw new Error('boom');\n" });
    expect((await loadError(dir)).message).toMatch(/cannot load filter .*nodes\.mjs: boom/);
  });

  it("refuses an empty directory", async () => {
    const dir = await filterDir({ "README.md": "no filters here" });
    expect((await loadError(dir)).message).toMatch(/no filter files in/);
  });

  it("refuses a missing directory", async () => {
    const err = await loadError(path.join(tmpdir(), "flowsync-does-not-exist"));
    expect(err.message).toMatch(/cannot read filters directory/);
  });

  it("lists every problem of a file, each with its path", async () => {
    const dir = await filterDir({ "nodes.mjs": moduleText({ collection: "", event: "X", extra: 1 }) });
    const { message } = await loadError(dir);
    expect(message).toMatch(/collection/);
    expect(message).toMatch(/event/);
    expect(message).toMatch(/extra/);
  });
});

describe("filters/examples", () => {
  it("each example loads and compiles on its own (they share kinds, so never together)", async () => {
    const specs = await readFilterSpecs("filters/examples");
    expect(specs.map((s) => [s.collection, Object.keys(s.entities ?? {})])).toEqual([
      ["workflows", ["nodes", "connections"]],
      ["flows", ["nodes", "edges"]],
    ]);
    for (const spec of specs) expect(compileFilters([spec]).byCollection.get(spec.collection)!.elements.length).toBe(2);
    expect(() => compileFilters(specs)).toThrow(/entity 'node' is already produced/);
  });
});
