/** Collections, databases and indexes: create, drop, rename, collMod, list*. */
import type { Document } from "bson";
import { collectionName, commandOptions, notImplemented, type Handler } from "../context";
import { Query } from "mingo";
import { Codes, engineError, fail } from "../errors";
import type { Collection, IndexSpec, Store } from "../store";
import { firstBatch } from "./read";

/** Collection options the simulator keeps; a validator is enforced on writes (validation.ts). */
const COLLECTION_OPTIONS = new Set(["changeStreamPreAndPostImages", "validator", "validationLevel", "validationAction"]);

export const create: Handler = (cmd, db, { data, server }) => {
  const name = collectionName(cmd, "create");
  const options = commandOptions(cmd);
  if (options.viewOn !== undefined || options.pipeline !== undefined) return createView(db, name, options, server.store);
  for (const key of Object.keys(options)) if (!COLLECTION_OPTIONS.has(key)) notImplemented(`create option '${key}'`);
  checkValidatorSpec(options);
  data.create(db, name, options);
  return { ok: 1 };
};

/** A validator the simulator cannot enforce is refused when it is set, not when a write meets it. */
function checkValidatorSpec(options: Document): void {
  const validator = options.validator as unknown;
  if (validator === undefined) return;
  if (validator === null || typeof validator !== "object" || Array.isArray(validator)) fail(Codes.TypeMismatch, "'validator' must be an object");
  if ("$jsonSchema" in validator) notImplemented("$jsonSchema validators");
  try {
    new Query(validator as Document);
  } catch (err) {
    throw engineError(err, Codes.BadValue);
  }
}

/** A read-only view (docs: core/views): its pipeline runs over `viewOn` on every read. */
function createView(db: string, name: string, options: Document, store: Store): Document {
  const { viewOn, pipeline = [], ...rest } = options;
  if (typeof viewOn !== "string" || viewOn.length === 0) fail(Codes.BadValue, "'viewOn' must be specified when 'pipeline' is");
  if (!Array.isArray(pipeline)) fail(Codes.TypeMismatch, "'pipeline' must be an array");
  for (const key of Object.keys(rest)) notImplemented(`create option '${key}' on a view`);
  for (const stage of pipeline as Document[]) {
    const stageName = Object.keys(stage)[0];
    if (stageName === "$out" || stageName === "$merge") fail(Codes.OptionNotSupportedOnView, `${stageName} cannot be used in a view definition`);
  }
  store.create(db, name, { viewOn, pipeline }, { viewOn, pipeline });
  return { ok: 1 };
}

export const drop: Handler = (cmd, db, { server }) => {
  const name = collectionName(cmd, "drop");
  // 7.0: dropping a collection that does not exist succeeds.
  const existed = server.store.drop(db, name);
  return existed ? { nIndexesWas: 1, ns: `${db}.${name}`, ok: 1 } : { ok: 1 };
};

export const dropDatabase: Handler = (_cmd, db, { server }) => {
  server.store.dropDatabase(db);
  return { dropped: db, ok: 1 };
};

export const renameCollection: Handler = (cmd, db, { server }) => {
  if (db !== "admin") fail(Codes.IllegalOperation, "renameCollection may only be run against the admin database.");
  const [from, to] = [cmd.renameCollection, cmd.to].map((ns) => {
    if (typeof ns !== "string" || !ns.includes(".")) fail(Codes.InvalidNamespace, `Invalid namespace specified '${ns}'`);
    const dot = ns.indexOf(".");
    return { db: ns.slice(0, dot), coll: ns.slice(dot + 1) };
  });
  server.store.rename(from!.db, from!.coll, to!.db, to!.coll, cmd.dropTarget === true);
  return { ok: 1 };
};

export const collMod: Handler = (cmd, db, { server }) => {
  const name = collectionName(cmd, "collMod");
  const coll = server.store.get(db, name);
  if (!coll) fail(Codes.NamespaceNotFound, `ns does not exist: ${db}.${name}`);
  const options = commandOptions(cmd);
  for (const key of Object.keys(options)) if (!COLLECTION_OPTIONS.has(key)) notImplemented(`collMod option '${key}'`);
  if (coll.view) notImplemented("collMod of a view");
  checkValidatorSpec(options);
  server.store.modify(db, coll, options);
  return { ok: 1 };
};

export const createIndexes: Handler = (cmd, db, { data }) => {
  const name = collectionName(cmd, "createIndexes");
  const specs = cmd.indexes as IndexSpec[];
  if (!Array.isArray(specs) || specs.length === 0) fail(Codes.BadValue, "Must specify at least one index to create");
  const existed = data.get(db, name) !== undefined;
  const coll = data.ensure(db, name);
  if (coll.view) fail(Codes.CommandNotSupportedOnView, `Namespace ${db}.${name} is a view, not a collection`);
  const before = coll.indexes.length;
  // An empty collection gets its indexes at once, one entry each; otherwise one (two-phase) build commits them all.
  const empty = coll.docs.size === 0;
  const created: IndexSpec[] = [];
  for (const spec of specs) {
    if (!spec.key || typeof spec.name !== "string") fail(Codes.BadValue, "index specification must have 'key' and 'name'");
    for (const opt of ["collation", "partialFilterExpression", "sparse", "hidden", "wildcardProjection"]) {
      if (spec[opt] !== undefined) notImplemented(`index option '${opt}'`);
    }
    // A TTL index is kept and listed, but nothing is ever removed by it (docs/simulator.md): flowsync's
    // presence readers expire entries themselves, and mongod's TTL monitor is no sooner than 60 s anyway.
    const ttl = spec.expireAfterSeconds;
    if (ttl !== undefined && (!Number.isSafeInteger(Number(ttl)) || Number(ttl) < 0 || Number(ttl) > 2_147_483_647 || Object.keys(spec.key).length !== 1)) {
      fail(Codes.BadValue, "TTL index 'expireAfterSeconds' must be an integer 0–2147483647, on a single field");
    }
    const { v: _v, key, name: indexName, ...indexOptions } = spec;
    const stored: IndexSpec = { v: 2, key, name: indexName, ...indexOptions };
    if (data.createIndex(db, coll, stored)) {
      if (empty) data.indexesCreated(db, coll, [stored]);
      else created.push(stored);
    }
  }
  data.indexesCreated(db, coll, created);
  return { numIndexesBefore: before, numIndexesAfter: coll.indexes.length, createdCollectionAutomatically: !existed, ok: 1 };
};

export const dropIndexes: Handler = (cmd, db, { server }) => {
  const name = collectionName(cmd, "dropIndexes");
  const coll = server.store.get(db, name);
  if (!coll) fail(Codes.NamespaceNotFound, `ns not found ${db}.${name}`);
  if (coll.view) fail(Codes.CommandNotSupportedOnView, `Namespace ${db}.${name} is a view, not a collection`);
  const before = coll.indexes.length;
  const which = cmd.index;
  if (which === "*") for (const spec of coll.indexes.filter((i) => i.name !== "_id_")) server.store.dropIndex(db, coll, spec.name);
  else for (const n of Array.isArray(which) ? which : [which]) server.store.dropIndex(db, coll, typeof n === "string" ? n : indexNameFor(coll, n));
  return { nIndexesWas: before, ok: 1 };
};

function indexNameFor(coll: Collection, key: Document): string {
  const spec = coll.indexes.find((i) => JSON.stringify(i.key) === JSON.stringify(key));
  if (!spec) fail(Codes.IndexNotFound, `can't find index with key: ${JSON.stringify(key)}`);
  return spec.name;
}

export const listIndexes: Handler = (cmd, db, ctx) => {
  const name = collectionName(cmd, "listIndexes");
  const coll = ctx.server.store.get(db, name);
  if (!coll) fail(Codes.NamespaceNotFound, `ns does not exist: ${db}.${name}`);
  if (coll.view) fail(Codes.CommandNotSupportedOnView, `Namespace ${db}.${name} is a view, not a collection`);
  const indexes = coll.indexes.map(({ v, key, name: n, ...rest }) => ({ v, key, name: n, ...rest }));
  return firstBatch(ctx, `${db}.${name}`, indexes, cmd, cmd.cursor?.batchSize);
};

export const listCollections: Handler = (cmd, db, ctx) => {
  const filter = (cmd.filter ?? {}) as Document;
  const all = ctx.server.store.collections(db).map((c) => {
    const type = c.view ? "view" : "collection";
    if (cmd.nameOnly) return { name: c.name, type };
    // Views have no UUID and no _id index of their own.
    if (c.view) return { name: c.name, type, options: c.options, info: { readOnly: true } };
    return { name: c.name, type, options: c.options, info: { readOnly: false, uuid: c.uuid }, idIndex: { v: 2, key: { _id: 1 }, name: "_id_" } };
  });
  const wanted = all.filter((c) => Object.entries(filter).every(([k, v]) => (k === "name" ? matchesName(c.name, v) : k === "type" ? v === c.type : true)));
  return firstBatch(ctx, `${db}.$cmd.listCollections`, wanted, cmd, cmd.cursor?.batchSize);
};

function matchesName(name: string, cond: unknown): boolean {
  if (typeof cond === "string") return name === cond;
  if (cond instanceof RegExp) return cond.test(name);
  if (cond && typeof cond === "object" && Array.isArray((cond as Document).$in)) return (cond as Document).$in.includes(name);
  notImplemented(`listCollections filter on name ${JSON.stringify(cond)}`);
}

export const listDatabases: Handler = (cmd, _db, { server }) => {
  const databases = server.store.databases().map((name) => ({ name, sizeOnDisk: 0, empty: false }));
  return cmd.nameOnly ? { databases: databases.map(({ name }) => ({ name })), ok: 1 } : { databases, totalSize: 0, totalSizeMb: 0, ok: 1 };
};
