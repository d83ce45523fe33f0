/**
 * mongo-init/init.ts, run exactly as docker-compose runs it (a child process with
 * MONGO_URL), against the test backend: twice, and the second run changes nothing.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { initDatabase, targetsFromFilters } from "../../mongo-init/init";
import { uniqueDb, useBackend } from "../support/backend";

const root = fileURLToPath(new URL("../../", import.meta.url));
const run = promisify(execFile);
const DEFAULT_COLLECTIONS = ["edges", "flow_executions", "flow_logs", "nodes"];

const h = useBackend();

async function runInit(dbName: string, env: Record<string, string> = {}) {
  const { stdout } = await run(process.execPath, ["--import", "tsx", "mongo-init/init.ts"], {
    cwd: root,
    env: { ...process.env, MONGO_URL: h.backend.url, MONGO_DB: dbName, FILTERS_DIR: "./filters", ...env },
  });
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

describe("mongo-init", () => {
  it("embedded-entity collections (routeBy _id): pre/post images on, and no index besides _id", async () => {
    const db = h.client.db(uniqueDb("init-emb"));
    const report = await initDatabase(db, await targetsFromFilters("test/fixtures/filters-embedded"));
    expect(report.created.sort()).toEqual(["boards", "flow_logs", "workflows"]);
    expect(report.indexesCreated).toEqual(["flow_logs.flowId_1"]);
    for (const name of ["boards", "workflows"]) {
      const [info] = await db.listCollections({ name }).toArray();
      expect((info as { options?: Record<string, unknown> }).options).toMatchObject({ changeStreamPreAndPostImages: { enabled: true } });
      expect((await db.collection(name).listIndexes().toArray()).map((x) => x.name)).toEqual(["_id_"]);
    }
  });

  it("creates the filters' collections with pre/post images and routing indexes, and a second run changes nothing", async () => {
    const dbName = uniqueDb("init");
    const db = h.client.db(dbName);

    const first = await runInit(dbName, { MONGO_INIT_DEMO: "1" });
    expect(first.created.sort()).toEqual(DEFAULT_COLLECTIONS);
    expect(first.indexesCreated.sort()).toEqual(DEFAULT_COLLECTIONS.map((c) => `${c}.flowId_1`));
    expect(first.demoDocuments).toBe(4);

    const collections = await db.listCollections().toArray();
    expect(collections.map((c) => c.name).sort()).toEqual(DEFAULT_COLLECTIONS);
    for (const c of collections) {
      expect((c as { options?: Record<string, unknown> }).options).toMatchObject({ changeStreamPreAndPostImages: { enabled: true } });
      const indexes = await db.collection(c.name).listIndexes().toArray();
      expect(indexes.map((i) => [i.name, i.key])).toEqual(
        expect.arrayContaining([
          ["_id_", { _id: 1 }],
          ["flowId_1", { flowId: 1 }],
        ]),
      );
      expect(indexes).toHaveLength(2);
    }
    expect(await db.collection("nodes").countDocuments({ flowId: "demo-flow" })).toBe(2);

    // The second run: no creation, no collMod, no new index, no write (so no change event either).
    const stream = db.watch([], { maxAwaitTimeMS: 50 });
    await stream.tryNext();
    const second = await runInit(dbName, { MONGO_INIT_DEMO: "1" });
    expect(second).toMatchObject({ created: [], imagesEnabled: [], indexesCreated: [], demoDocuments: 0 });
    expect(await stream.tryNext()).toBeNull();
    await stream.close();
    expect(await db.collection("nodes").countDocuments()).toBe(2);
    expect(await db.collection("edges").countDocuments()).toBe(1);
  });

  it("PRESENCE=on: the presence collection with a TTL index on expiresAt, once; without it, no such collection", async () => {
    const dbName = uniqueDb("init");
    const first = await runInit(dbName, { PRESENCE: "on" });
    expect(first.created.sort()).toEqual([...DEFAULT_COLLECTIONS, "flowsync_presence"].sort());
    expect(first.indexesCreated).toContain("flowsync_presence.expiresAt_1");
    const indexes = await h.client.db(dbName).collection("flowsync_presence").listIndexes().toArray();
    expect(indexes.find((i) => i.name === "expiresAt_1")).toMatchObject({ key: { expiresAt: 1 }, expireAfterSeconds: 0 });
    const second = await runInit(dbName, { PRESENCE: "on" });
    expect(second).toMatchObject({ created: [], indexesCreated: [] });

    const named = uniqueDb("init");
    const custom = await runInit(named, { PRESENCE: "on", PRESENCE_COLLECTION: "who_is_here" });
    expect(custom.created).toContain("who_is_here");
    const off = await runInit(uniqueDb("init"));
    expect(off.created.sort()).toEqual(DEFAULT_COLLECTIONS);
  });

  it("without MONGO_INIT_DEMO writes no documents", async () => {
    const dbName = uniqueDb("init");
    const report = await runInit(dbName);
    expect(report.demoDocuments).toBe(0);
    for (const name of DEFAULT_COLLECTIONS) expect(await h.client.db(dbName).collection(name).countDocuments()).toBe(0);
  });

  it("switches pre/post images on for a collection the app created without them, keeping its documents", async () => {
    const db = h.client.db(uniqueDb("init"));
    await db.createCollection("nodes");
    await db.collection("nodes").insertOne({ _id: "kept" as never, flowId: "f" });
    const report = await initDatabase(db, await targetsFromFilters("./filters"));
    expect(report.imagesEnabled).toEqual(["nodes"]);
    expect(report.created.sort()).toEqual(DEFAULT_COLLECTIONS.filter((c) => c !== "nodes"));
    const [info] = await db.listCollections({ name: "nodes" }).toArray();
    expect((info as { options?: Record<string, unknown> }).options).toMatchObject({ changeStreamPreAndPostImages: { enabled: true } });
    expect(await db.collection("nodes").findOne({ _id: "kept" as never })).toMatchObject({ flowId: "f" });
  });

  it("fails with exit code 1 and a reason when MONGO_URL is missing", async () => {
    const failed = await run(process.execPath, ["--import", "tsx", "mongo-init/init.ts"], { cwd: root, env: { ...process.env, MONGO_URL: "" } }).catch(
      (e) => e,
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("MONGO_URL is required");
  });
});
