/** find, getMore, killCursors, aggregate (incl. $changeStream and $currentOp), count, distinct. */
import { Aggregator, Query } from "mingo";
import { Long, ObjectId, UUID, type Document } from "bson";
import { withIdFirst } from "../apply-update";
import { checkIdField, checkValidator } from "../validation";
import { ChangeStreamReader, openChangeStream } from "../change-stream";
import { clone, collectionName, notImplemented, readTime, type Ctx, type Handler } from "../context";
import type { QueryCursor, StreamCursor } from "../cursors";
import { currentOp } from "./current-op";
import { Codes, engineError, fail, RESUMABLE_CODES } from "../errors";
import { valueKey } from "../store";
import { copyDeep } from "../immutable";
import { letVariables } from "../variables";

const DEFAULT_BATCH = 101;
/** What a getMore without batchSize returns at most (https://www.mongodb.com/docs/manual/reference/command/getMore/). */
const GETMORE_MAX_BYTES = 16 * 1024 * 1024;
/** How long a change-stream getMore waits for events when the client gives no maxTimeMS (SERVER-19665). */
const DEFAULT_AWAIT_MS = 1000;

/** A cursor reply; `id` must be int64 on the wire (docs/mongodb.md#cursor-replies). */
export function cursorReply(ns: string, id: number, batch: Document[], first: boolean, extra: Document = {}): Document {
  return { cursor: { id: Long.fromNumber(id), ns, [first ? "firstBatch" : "nextBatch"]: batch, ...extra }, ok: 1 };
}

/** Returns the first batch of `docs`, opening a cursor for the rest if there is more. */
export function firstBatch(ctx: Ctx, ns: string, docs: Document[], cmd: Document, batchSize: number | undefined, extra: Document = {}): Document {
  const size = batchSize === undefined || batchSize < 0 ? DEFAULT_BATCH : batchSize;
  const batch = docs.slice(0, size);
  if (batch.length === docs.length || cmd.singleBatch) return cursorReply(ns, 0, batch, true, extra);
  const cursor = ctx.server.cursors.add<QueryCursor>({ kind: "query", ns, originatingCommand: cmd, docs, at: batch.length });
  return cursorReply(ns, cursor.id, batch, true, extra);
}

function snapshotField(cmd: Document, ctx: Ctx): Document {
  const at = readTime(cmd, ctx);
  return at ? { atClusterTime: at } : {};
}

export const find: Handler = (cmd, db, ctx) => {
  const name = collectionName(cmd, "find");
  for (const opt of ["collation", "min", "max", "returnKey", "showRecordId", "tailable", "awaitData"]) {
    if (cmd[opt]) notImplemented(`find option '${opt}'`);
  }
  const docs = ctx.data.documentsAt(db, name, readTime(cmd, ctx));
  // A projection edits the documents it is given: only the matching ones are copied for it.
  const query = new Query(cmd.filter ?? {}, { variables: letVariables(cmd) });
  let cursor = query.find(docs);
  const sort = cmd.sort as Document | undefined;
  if (sort && Object.keys(sort).length > 0 && !("$natural" in sort)) cursor = cursor.sort(sort as never);
  if (cmd.skip) cursor = cursor.skip(cmd.skip);
  let limit = cmd.limit as number | undefined;
  let single = cmd.singleBatch === true;
  if (limit !== undefined && limit < 0) {
    limit = -limit;
    single = true;
  }
  if (limit) cursor = cursor.limit(limit);
  let result = cursor.all() as Document[];
  if (cmd.projection && Object.keys(cmd.projection as Document).length > 0) {
    // The filter again, for a positional projection (`a.$`); every copy matches it.
    result = query.find(result.map(copyDeep), cmd.projection).all() as Document[];
  }
  return firstBatch(ctx, `${db}.${name}`, result, { ...cmd, singleBatch: single }, cmd.batchSize, snapshotField(cmd, ctx));
};

export const count: Handler = (cmd, db, ctx) => {
  const name = collectionName(cmd, "count");
  const docs = ctx.data.documentsAt(db, name, readTime(cmd, ctx));
  let n = new Query(cmd.query ?? {}).find(docs).all().length;
  n = Math.max(0, n - (cmd.skip ?? 0));
  if (cmd.limit) n = Math.min(n, Math.abs(cmd.limit));
  return { n, ok: 1 };
};

export const distinct: Handler = (cmd, db, ctx) => {
  const name = collectionName(cmd, "distinct");
  if (typeof cmd.key !== "string") fail(Codes.TypeMismatch, "distinct: 'key' must be a string");
  const docs = ctx.data.documentsAt(db, name, readTime(cmd, ctx));
  const seen = new Map<string, unknown>();
  const add = (v: unknown) => {
    if (v !== undefined && !seen.has(valueKey(v))) seen.set(valueKey(v), v);
  };
  for (const doc of new Query(cmd.query ?? {}).find(docs).all()) {
    const [value] = new Aggregator([{ $project: { _id: 0, v: `$${cmd.key}` } }]).run([doc]) as Document[];
    if (Array.isArray(value?.v)) value.v.forEach(add);
    else add(value?.v);
  }
  return { values: [...seen.values()], ...snapshotField(cmd, ctx), ok: 1 };
};

export const aggregate: Handler = (cmd, db, ctx) => {
  const pipeline = cmd.pipeline as Document[];
  if (!Array.isArray(pipeline)) fail(Codes.TypeMismatch, "aggregate: 'pipeline' must be an array");
  if (cmd.explain) notImplemented("explain");
  const first = pipeline[0] ? Object.keys(pipeline[0])[0] : undefined;
  const batchSize = (cmd.cursor as Document | undefined)?.batchSize as number | undefined;
  pipeline.forEach((stage, at) => {
    const name = Object.keys(stage)[0];
    if (name === "$changeStream" && at > 0) fail(40602, "$changeStream is only valid as the first stage in a pipeline");
    // mingo would run $merge without storing anything (silently wrong); $out is handled below.
    if (name === "$merge") notImplemented(`aggregation stage ${name}`);
    if (name === "$out" && at !== pipeline.length - 1) fail(40601, "$out can only be the final stage in the pipeline");
  });
  if (first === "$changeStream") return openStream(cmd, db, ctx, pipeline, batchSize);
  if (cmd.aggregate === 1) {
    let source: Document[];
    if (first === "$currentOp" && db === "admin") source = currentOp(ctx, (pipeline[0]!.$currentOp ?? {}) as Document);
    // $listLocalSessions runs on any database (mongod allows it on admin and on others alike).
    else if (first === "$listLocalSessions") source = ctx.server.sessionCache.list();
    else notImplemented(`database-level aggregate starting with ${first}`);
    return firstBatch(
      ctx,
      `${db}.$cmd.aggregate`,
      new Aggregator(pipeline.slice(1), { variables: letVariables(cmd) }).run(source.map(copyDeep)) as Document[],
      cmd,
      batchSize,
    );
  }
  const name = collectionName(cmd, "aggregate");
  if (cmd.collation) notImplemented("collation");
  const at = readTime(cmd, ctx);
  const store = ctx.data;
  // Stages edit the documents they are given: the pipeline reads copies (immutable.ts).
  const docs = store.documentsAt(db, name, at).map(copyDeep);
  const out = pipeline.length > 0 && "$out" in pipeline[pipeline.length - 1]! ? pipeline[pipeline.length - 1]!.$out : undefined;
  const stages = out === undefined ? pipeline : pipeline.slice(0, -1);
  let result: Document[];
  try {
    result = new Aggregator(stages, {
      variables: letVariables(cmd),
      collectionResolver: (other: string) => store.documentsAt(db, other, at).map(copyDeep),
    }).run(docs) as Document[];
  } catch (err) {
    throw engineError(err, Codes.BadValue);
  }
  if (out !== undefined) {
    writeOut(ctx, db, out, result, cmd.bypassDocumentValidation === true);
    return cursorReply(`${db}.${name}`, 0, [], true);
  }
  return firstBatch(ctx, `${db}.${name}`, result, cmd, batchSize, at ? { atClusterTime: at } : {});
};

/**
 * `$out` as mongod runs it (docs: reference/operator/aggregation/out): the results go
 * into a temporary collection `tmp.agg_out.<uuid>` in the target database, which takes
 * the target's indexes and options and is then renamed over the target (dropTarget). So
 * the target is replaced at once, or, on any error, left as it was.
 */
function writeOut(ctx: Ctx, db: string, spec: unknown, docs: Document[], bypass: boolean): void {
  const target = typeof spec === "string" ? { db, coll: spec } : { db: (spec as Document)?.db ?? db, coll: (spec as Document)?.coll };
  if (typeof target.db !== "string" || typeof target.coll !== "string")
    fail(Codes.FailedToParse, "$out stage requires a string or an object with 'db' and 'coll'");
  const { store } = ctx.server;
  const existing = store.get(target.db, target.coll);
  if (existing?.view) fail(Codes.CommandNotSupportedOnView, `Namespace ${target.db}.${target.coll} is a view, not a collection`);
  const temp = store.create(target.db, `tmp.agg_out.${new UUID().toHexString()}`, existing ? { ...existing.options } : {});
  try {
    for (const spec of existing?.indexes ?? []) {
      if (spec.name !== "_id_" && store.createIndex(target.db, temp, { ...spec })) store.indexesCreated(target.db, temp, [spec]);
    }
    for (const doc of docs) {
      const stored = withIdFirst(clone(doc._id === undefined ? { _id: new ObjectId(), ...doc } : doc));
      checkIdField(stored._id);
      checkValidator(temp, stored, undefined, bypass);
      store.insert(target.db, temp, stored);
    }
    store.rename(target.db, temp.name, target.db, target.coll, true);
  } catch (err) {
    store.drop(target.db, temp.name);
    throw err;
  }
}

function openStream(cmd: Document, db: string, ctx: Ctx, pipeline: Document[], batchSize: number | undefined): Document {
  const { server } = ctx;
  const opened = openChangeStream(db, cmd.aggregate, pipeline, server.oplog, server.setName !== undefined);
  const reader = new ChangeStreamReader(opened.spec, opened.start, opened.stages, server.oplog, server.store);
  const ns = typeof cmd.aggregate === "string" ? `${db}.${cmd.aggregate}` : `${db}.$cmd.aggregate`;
  const batch = reader.read(batchSize ?? DEFAULT_BATCH);
  const extra = { postBatchResumeToken: { _data: reader.position } };
  if (reader.invalidated) return cursorReply(ns, 0, batch, true, extra);
  const cursor = server.cursors.add<StreamCursor>({ kind: "changeStream", ns, originatingCommand: cmd, reader });
  return cursorReply(ns, cursor.id, batch, true, extra);
}

export const getMore: Handler = async (cmd, db, ctx) => {
  const id = Number(cmd.getMore);
  const { cursors, failPoints } = ctx.server;
  const cursor = cursors.get(id);
  if (!cursor) fail(Codes.CursorNotFound, `cursor id ${id} not found`);
  const expectedNs = `${db}.${cmd.collection}`;
  if (cursor.ns !== expectedNs && !(cursor.ns.endsWith(".$cmd.aggregate") && cmd.collection === "$cmd.aggregate")) {
    fail(Codes.Unauthorized, `Requested getMore on namespace '${expectedNs}', but cursor belongs to a different namespace ${cursor.ns}`);
  }
  cursor.lastUsed = new Date();
  const injected = failPoints.check("failGetMoreAfterCursorCheckout", { command: "getMore", appName: ctx.conn.appName, ns: cursor.ns });
  if (injected) {
    // getmore_cmd.cpp: the error defaults to InternalError, and (as any error once the cursor
    // is checked out) it deletes the cursor. Only `errorCode` is read: no closeConnection here.
    const code = (injected.errorCode as number | undefined) ?? Codes.InternalError;
    cursors.remove(cursor.id);
    const labels = cursor.kind === "changeStream" && RESUMABLE_CODES.has(code) ? ["ResumableChangeStreamError"] : undefined;
    fail(code, "Hit the 'failGetMoreAfterCursorCheckout' failpoint", labels);
  }
  if (cursor.kind === "query") return nextQueryBatch(ctx, cursor, cmd.batchSize);
  cursor.pinned = true;
  try {
    return await nextStreamBatch(ctx, cursor, cmd);
  } finally {
    cursor.pinned = false;
  }
};

function nextQueryBatch(ctx: Ctx, cursor: QueryCursor, batchSize: number | undefined): Document {
  const end = batchSize && batchSize > 0 ? cursor.at + batchSize : cursor.docs.length;
  const batch = cursor.docs.slice(cursor.at, end);
  cursor.at += batch.length;
  const done = cursor.at >= cursor.docs.length;
  if (done) ctx.server.cursors.remove(cursor.id);
  return cursorReply(cursor.ns, done ? 0 : cursor.id, batch, false);
}

/** Tailable + awaitData: wait up to maxTimeMS for events, then answer, possibly with an empty batch. */
async function nextStreamBatch(ctx: Ctx, cursor: StreamCursor, cmd: Document): Promise<Document> {
  const { oplog, cursors } = ctx.server;
  const deadline = Date.now() + ((cmd.maxTimeMS as number | undefined) ?? DEFAULT_AWAIT_MS);
  const stop = AbortSignal.any([cursor.killed.signal, ctx.conn.closed]);
  let batch: Document[];
  for (;;) {
    try {
      // Without a batchSize, a getMore returns as much as fits in 16 MiB (getMore's reference page),
      // not the 101 documents of a first batch.
      const size = cmd.batchSize as number | undefined;
      batch = size ? cursor.reader.read(size) : cursor.reader.read(Infinity, GETMORE_MAX_BYTES);
    } catch (err) {
      cursors.remove(cursor.id); // an error ends the cursor, as on a real server
      throw err;
    }
    const remaining = deadline - Date.now();
    if (batch.length > 0 || cursor.reader.invalidated || remaining <= 0 || stop.aborted) break;
    await oplog.waitForAppend(remaining, stop);
  }
  if (ctx.conn.closed.aborted) {
    // The client went away mid-getMore: mongod interrupts the operation, which deletes the cursor.
    cursors.remove(cursor.id);
    fail(Codes.ClientDisconnect, "operation was interrupted because a client disconnected");
  }
  if (cursor.killed.signal.aborted && batch.length === 0) fail(Codes.CursorKilled, `cursor id ${cursor.id} was killed`);
  const extra = { postBatchResumeToken: { _data: cursor.reader.position } };
  if (cursor.reader.invalidated) cursors.remove(cursor.id);
  return cursorReply(cursor.ns, cursor.reader.invalidated ? 0 : cursor.id, batch, false, extra);
}

export const killCursors: Handler = (cmd, _db, ctx) => {
  const ids = ((cmd.cursors ?? []) as unknown[]).map(Number);
  const killed: Long[] = [];
  const notFound: Long[] = [];
  for (const id of ids) (ctx.server.cursors.remove(id) ? killed : notFound).push(Long.fromNumber(id));
  return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
};
