/**
 * One-shot setup of the database flowsync watches, safe to run any number of times:
 *
 *   - every collection named in FILTERS_DIR exists, with `changeStreamPreAndPostImages`
 *     enabled (so a delete's pre-image carries its routing field: see docs/operations.md, drop-in guide;
 *     and so that a document of embedded entities yields exact per-element events: docs/filters.md);
 *   - each has an ascending index on its routing field (snapshots and catch-up filter on it);
 *   - with `PRESENCE=on`, the presence collection (`PRESENCE_COLLECTION`, default `flowsync_presence`)
 *     with a TTL index on `expiresAt` (`expireAfterSeconds: 0`): it removes the entries of an instance
 *     that died without cleaning up (flowsync's readers stop counting them earlier, docs/presence.md);
 *   - optionally (`MONGO_INIT_DEMO=1`), one demo flow, written only if it is not there yet.
 *
 * The collections come from the filters, not from a list here: an app with other
 * collection names changes only `filters/`. Plain driver calls, no flowsync runtime.
 *
 * Usage (docker-compose runs exactly this):
 *   MONGO_URL=mongodb://mongo:27017/?replicaSet=rs0 node --import tsx mongo-init/init.ts
 * Environment: MONGO_URL (required), MONGO_DB (flowboard), FILTERS_DIR (./filters), MONGO_INIT_DEMO (0),
 * PRESENCE (off), PRESENCE_COLLECTION (flowsync_presence).
 * Exit 0 when everything is in place, 1 (with the reason) otherwise.
 */
import { pathToFileURL } from "node:url";
import { MongoClient, MongoServerError, type Db, type Document } from "mongodb";
import { readFilterSpecs } from "../src/filters/load";

export interface InitTarget {
  collection: string;
  /** The routing field (filter `routeBy`), indexed ascending. */
  routeBy: string;
}

export interface InitReport {
  created: string[];
  /** Existing collections on which pre/post images were switched on. */
  imagesEnabled: string[];
  /** Indexes that did not exist before, as `collection.indexName`. */
  indexesCreated: string[];
  demoDocuments: number;
}

export const DEMO_FLOW_ID = "demo-flow";

const NAMESPACE_EXISTS = 48;

/** The collections and routing fields named by the filter files in `dir`. */
export async function targetsFromFilters(dir: string): Promise<InitTarget[]> {
  const specs = await readFilterSpecs(dir);
  return specs.map((s) => ({ collection: s.collection, routeBy: s.routeBy }));
}

export async function initDatabase(
  db: Db,
  targets: readonly InitTarget[],
  { demo = false, presence }: { demo?: boolean; presence?: string } = {},
): Promise<InitReport> {
  const report: InitReport = { created: [], imagesEnabled: [], indexesCreated: [], demoDocuments: 0 };
  if (presence !== undefined) await initPresence(db, presence, report);
  for (const { collection, routeBy } of targets) {
    const existing = await collectionInfo(db, collection);
    if (!existing) {
      try {
        await db.createCollection(collection, { changeStreamPreAndPostImages: { enabled: true } });
        report.created.push(collection);
      } catch (err) {
        // Another init (or the app) created it meanwhile: fall through to the collMod check.
        if (!(err instanceof MongoServerError && err.code === NAMESPACE_EXISTS)) throw err;
      }
    }
    const info = existing ?? (await collectionInfo(db, collection));
    if (info && info.options?.changeStreamPreAndPostImages?.enabled !== true) {
      await db.command({ collMod: collection, changeStreamPreAndPostImages: { enabled: true } });
      report.imagesEnabled.push(collection);
    }
    // `routeBy: "_id"` (a flow stored as one document): the collection's own _id index serves it.
    if (routeBy === "_id") continue;
    const name = `${routeBy}_1`;
    const before = await db
      .collection(collection)
      .indexExists(name)
      .catch(() => false);
    await db.collection(collection).createIndex({ [routeBy]: 1 }, { name });
    if (!before) report.indexesCreated.push(`${collection}.${name}`);
  }
  if (demo) report.demoDocuments = await writeDemoFlow(db, targets);
  return report;
}

/** The presence collection and its TTL index; no pre-images: its deletes carry the instance and flow in `_id`. */
async function initPresence(db: Db, collection: string, report: InitReport): Promise<void> {
  if (!(await collectionInfo(db, collection))) {
    try {
      await db.createCollection(collection);
      report.created.push(collection);
    } catch (err) {
      if (!(err instanceof MongoServerError && err.code === NAMESPACE_EXISTS)) throw err;
    }
  }
  const name = "expiresAt_1";
  const before = await db
    .collection(collection)
    .indexExists(name)
    .catch(() => false);
  await db.collection(collection).createIndex({ expiresAt: 1 }, { name, expireAfterSeconds: 0 });
  if (!before) report.indexesCreated.push(`${collection}.${name}`);
}

async function collectionInfo(db: Db, name: string): Promise<Document | undefined> {
  const [info] = await db.listCollections({ name }).toArray();
  return info;
}

/**
 * A small canvas for `DEMO_FLOW_ID`, with fixed `_id`s and `$setOnInsert`, so a second
 * run changes nothing (and emits no change events). Only into the default collections.
 */
async function writeDemoFlow(db: Db, targets: readonly InitTarget[]): Promise<number> {
  const names = new Set(targets.map((t) => t.collection));
  const docs: Array<[string, Document]> = [
    ["nodes", { _id: "demo-node-prompt", flowId: DEMO_FLOW_ID, type: "prompt", position: { x: 0, y: 0 }, data: { text: "Hello" } }],
    ["nodes", { _id: "demo-node-llm", flowId: DEMO_FLOW_ID, type: "llm", position: { x: 240, y: 0 }, data: { model: "small" } }],
    ["edges", { _id: "demo-edge-1", flowId: DEMO_FLOW_ID, source: "demo-node-prompt", target: "demo-node-llm" }],
    ["flow_executions", { _id: "demo-run-1", flowId: DEMO_FLOW_ID, status: "done", progress: 100, jobs: { "demo-node-llm": "done" } }],
  ];
  let written = 0;
  for (const [collection, doc] of docs) {
    if (!names.has(collection)) continue;
    const { _id, ...rest } = doc;
    const result = await db.collection<Document>(collection).updateOne({ _id }, { $setOnInsert: rest }, { upsert: true });
    written += result.upsertedCount;
  }
  return written;
}

async function main(): Promise<void> {
  const url = process.env.MONGO_URL;
  if (!url) throw new Error("MONGO_URL is required, e.g. mongodb://mongo:27017/?replicaSet=rs0");
  const dbName = process.env.MONGO_DB || "flowboard";
  const demo = ["1", "true", "yes"].includes((process.env.MONGO_INIT_DEMO ?? "").toLowerCase());
  const targets = await targetsFromFilters(process.env.FILTERS_DIR || "./filters");
  const presence = ["on", "true", "1"].includes((process.env.PRESENCE ?? "").toLowerCase())
    ? process.env.PRESENCE_COLLECTION || "flowsync_presence"
    : undefined;
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 30_000 });
  try {
    const report = await initDatabase(client.db(dbName), targets, { demo, presence });
    console.log(JSON.stringify({ msg: "mongo-init done", db: dbName, collections: targets.map((t) => t.collection), ...report }));
  } finally {
    await client.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(`mongo-init failed: ${(err as Error).message}`);
    process.exit(1);
  });
}
