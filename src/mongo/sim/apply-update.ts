/**
 * Update semantics (operator updates, replacements, pipeline updates, upserts)
 * on top of mingo, which does the operator work; this file adds what mingo
 * leaves to the server: `_id` immutability, `$setOnInsert`, and upsert seeds.
 */
import { Aggregator, update as mingoUpdate } from "mingo";
import { ObjectId, type Document } from "bson";
import { Codes, engineError, fail } from "./errors";
import { clone } from "./context";
import { valueKey } from "./store";

export type UpdateKind = "operators" | "replacement" | "pipeline";

export function updateKind(u: unknown): UpdateKind {
  if (Array.isArray(u)) return "pipeline";
  if (u === null || typeof u !== "object") fail(Codes.FailedToParse, "Update argument must be either an object or an array");
  const keys = Object.keys(u);
  const ops = keys.filter((k) => k.startsWith("$")).length;
  if (ops === 0) return "replacement";
  if (ops !== keys.length)
    fail(
      Codes.FailedToParse,
      `Unknown modifier: ${keys.find((k) => !k.startsWith("$"))}. Expected a valid update modifier or pipeline-style update specified as an array`,
    );
  return "operators";
}

/** The document after applying `u` to `doc` (a new object; `doc` is untouched). */
export function applyUpdate(
  doc: Document,
  u: Document | Document[],
  opts: { arrayFilters?: Document[]; query?: Document; inserting?: boolean; variables?: Document } = {},
): Document {
  const kind = updateKind(u);
  let next: Document;
  if (kind === "replacement") {
    const { _id, ...rest } = u as Document;
    if (_id !== undefined && doc._id !== undefined && valueKey(_id) !== valueKey(doc._id)) immutableId();
    next = doc._id !== undefined ? { _id: doc._id, ...rest } : { ...(u as Document) };
    return withIdFirst(clone(next));
  }
  if (kind === "pipeline") {
    try {
      next = (new Aggregator(u as Document[], { variables: opts.variables }).run([clone(doc)]) as Document[])[0] ?? {};
    } catch (err) {
      throw engineError(err, Codes.BadValue);
    }
    // A pipeline may leave `_id` out (e.g. `$replaceRoot`): mongod then keeps the
    // document's own `_id`; only changing it is an error (update_driver / pipeline_executor).
    if (next._id === undefined && doc._id !== undefined) next = { _id: doc._id, ...next };
  } else {
    const { $setOnInsert, ...ops } = u as Document;
    if (opts.inserting && $setOnInsert) ops.$set = { ...(ops.$set ?? {}), ...$setOnInsert };
    // MongoDB accepts `$set: {_id: <the same value>}` as a no-op; mingo refuses any write to _id.
    if (ops.$set && "_id" in ops.$set && doc._id !== undefined && valueKey(ops.$set._id) === valueKey(doc._id)) {
      const { _id, ...rest } = ops.$set as Document;
      ops.$set = rest;
    }
    next = clone(doc);
    try {
      mingoUpdate(next, ops, opts.arrayFilters, opts.query);
    } catch (err) {
      const message = (err as Error).message;
      if (/immutable field/.test(message)) fail(Codes.ImmutableField, message);
      throw engineError(err, Codes.BadValue);
    }
  }
  if (doc._id !== undefined && valueKey(next._id) !== valueKey(doc._id)) immutableId();
  return withIdFirst(next);
}

/** The document an upsert starts from: the equality conditions of its query (`{a: 1}`, `{a: {$eq: 1}}`, `$and`). */
export function upsertSeed(query: Document): Document {
  const seed: Document = {};
  const visit = (q: Document) => {
    for (const [key, value] of Object.entries(q)) {
      if (key === "$and" && Array.isArray(value)) value.forEach(visit);
      if (key.startsWith("$")) continue;
      const isOperator = value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).some((k) => k.startsWith("$"));
      if (!isOperator) setPath(seed, key, value);
      else if ("$eq" in value) setPath(seed, key, (value as Document).$eq);
    }
  };
  visit(query);
  return seed;
}

/** The new document an upsert inserts. */
export function upsertDocument(query: Document, u: Document | Document[], arrayFilters?: Document[], variables?: Document): Document {
  const seed = upsertSeed(query);
  const doc = updateKind(u) === "replacement" ? applyUpdate({ _id: seed._id }, u) : applyUpdate(seed, u, { arrayFilters, inserting: true, variables });
  if (doc._id === undefined) doc._id = new ObjectId();
  return withIdFirst(doc);
}

/** MongoDB stores `_id` as the first field. */
export function withIdFirst(doc: Document): Document {
  if (doc._id === undefined) {
    delete doc._id;
    return doc;
  }
  if (Object.keys(doc)[0] === "_id") return doc;
  const { _id, ...rest } = doc;
  return { _id, ...rest };
}

function setPath(doc: Document, path: string, value: unknown): void {
  const parts = path.split(".");
  let cur = doc;
  for (const part of parts.slice(0, -1)) cur = cur[part] ??= {};
  cur[parts[parts.length - 1]!] = value;
}

function immutableId(): never {
  fail(Codes.ImmutableField, "Performing an update on the path '_id' would modify the immutable field '_id'");
}
