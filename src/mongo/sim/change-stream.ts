/**
 * `$changeStream`: turns oplog entries into change events, as MongoDB 7.0
 * documents them, and keeps one stream's position (its last resume token).
 *
 * A reader is pure bookkeeping over the oplog: `read()` scans synchronously and
 * never waits; the getMore handler does the awaiting (tailable, awaitData).
 */
import { Aggregator } from "mingo";
import { copyDeep } from "./immutable";
import { calculateObjectSize, Long, type Document, type Timestamp } from "bson";
import { Codes, fail } from "./errors";
import { compareTs, type DdlOp, type Oplog, type OplogEntry, type TxnOp, type UpdateDescription } from "./oplog";
import { decodeToken, encodeToken, hwmToken, type TokenData } from "./resume-token";
import { valueKey, type Store } from "./store";

export type Level = "collection" | "database" | "cluster";

export interface ChangeStreamSpec {
  level: Level;
  db: string;
  coll?: string;
  fullDocument: "default" | "updateLookup" | "whenAvailable" | "required";
  fullDocumentBeforeChange: "off" | "whenAvailable" | "required";
  showExpandedEvents: boolean;
}

const STAGE_OPTIONS = new Set([
  "fullDocument",
  "fullDocumentBeforeChange",
  "resumeAfter",
  "startAfter",
  "startAtOperationTime",
  "allChangesForCluster",
  "showExpandedEvents",
  "allowToRunOnConfigDB",
  "allowToRunOnSystemNS",
]);
const FULL_DOCUMENT = new Set(["default", "updateLookup", "whenAvailable", "required"]);
const BEFORE_CHANGE = new Set(["off", "whenAvailable", "required"]);
/** Stages MongoDB allows after $changeStream. */
const ALLOWED_STAGES = new Set(["$match", "$project", "$addFields", "$set", "$unset", "$replaceRoot", "$replaceWith", "$redact"]);
/** Stages MongoDB knows but refuses in a change stream (anything else is "unrecognized"). */
const KNOWN_STAGES = new Set([
  "$group",
  "$sort",
  "$limit",
  "$skip",
  "$lookup",
  "$unwind",
  "$facet",
  "$out",
  "$merge",
  "$count",
  "$sample",
  "$bucket",
  "$graphLookup",
  "$sortByCount",
  "$densify",
  "$fill",
  "$setWindowFields",
  "$unionWith",
  "$documents",
  "$geoNear",
  "$collStats",
  "$indexStats",
  "$currentOp",
  "$listSessions",
  "$changeStream",
]);
const INTERNAL_DBS = new Set(["admin", "config", "local"]);
const DDL_OPS = new Set<string>(["create", "createIndexes", "dropIndexes", "collMod"] satisfies DdlOp[]);
/** The label mongod adds to errors of its NonResumableChangeStreamError class (280, 286). */
const NON_RESUMABLE = ["NonResumableChangeStreamError"];

export class ChangeStreamReader {
  /** Exclusive lower bound: the token of the last event (or high-water mark) consumed. */
  position: string;
  invalidated = false;
  /** The follow-on stages, compiled on the first event and kept for the cursor's life (see compilePipeline). */
  private pipeline: ((event: Document) => Document | undefined) | undefined;
  private readonly stages: Document[];
  /**
   * An event token the stream resumes after (resumeAfter/startAfter) that has not been seen
   * yet. As mongod's DocumentSourceChangeStreamEnsureResumeTokenPresent, the stream must meet
   * that very event before any later one, or the token did not come from this stream: 280.
   */
  private mustFind: string | undefined;

  constructor(
    readonly spec: ChangeStreamSpec,
    start: string,
    stages: Document[],
    private readonly oplog: Oplog,
    private readonly store: Store,
  ) {
    this.position = start;
    // $$NOW is the time the aggregate opened, for every event and every stage (see withNow).
    this.stages = withNow(stages, new Date());
    if (decodeToken({ _data: start })?.kind === "event") this.mustFind = start;
  }

  /**
   * Up to `max` events after the current position, and no more than `maxBytes` of BSON (the first
   * event always fits); advances the position past what it scanned.
   */
  read(max: number, maxBytes = Infinity): Document[] {
    const pos = decodeToken({ _data: this.position })!;
    this.checkHistory(pos);
    const out: Document[] = [];
    let bytes = 0;
    for (const entry of this.oplog.from(pos.ts)) {
      for (const [token, make] of this.expand(entry)) {
        if (out.length >= max) return out;
        if (this.mustFind !== undefined && token >= this.mustFind) {
          if (token > this.mustFind) fail(Codes.ChangeStreamFatalError, "cannot resume stream; the resume token was not found.", NON_RESUMABLE);
          this.mustFind = undefined;
        }
        if (token <= this.position) continue;
        const event = make();
        if (event.operationType === "invalidate") {
          this.position = token;
          this.invalidated = true;
          out.push(event);
          return out;
        }
        const shown = this.applyPipeline(event);
        if (shown && maxBytes !== Infinity) {
          const size = calculateObjectSize(shown);
          // Left for the next batch, position unchanged: reading it again gives the same event.
          if (out.length > 0 && bytes + size > maxBytes) return out;
          bytes += size;
        }
        this.position = token;
        if (shown) out.push(shown);
      }
    }
    // Everything up to the newest write has been scanned: the high-water mark moves past it.
    const hwm = hwmToken(nextTs(this.oplog.lastTs));
    if (hwm > this.position) this.position = hwm;
    return out;
  }

  /**
   * A resume point at or before the end of history is lost: for a high-water mark the entries
   * at its time may be gone; for an event token, the event itself is (mongod likewise requires
   * the oldest oplog entry to be no newer than the resume point).
   */
  private checkHistory(pos: TokenData): void {
    if (compareTs(pos.ts, this.oplog.truncatedThrough) <= 0) {
      fail(Codes.ChangeStreamHistoryLost, "Resume of change stream was not possible, as the resume point may no longer be in the oplog.", NON_RESUMABLE);
    }
  }

  private applyPipeline(event: Document): Document | undefined {
    if (this.stages.length === 0) return event;
    // Compiled on the first event, as before (a bad stage fails the read that meets the first event).
    this.pipeline ??= compilePipeline(this.stages);
    // The event holds stored documents and images (fullDocument, fullDocumentBeforeChange,
    // updatedFields): the stages edit what they are given, so they get a copy (immutable.ts).
    const result = this.pipeline(copyDeep(event));
    if (!result) return undefined;
    if (!sameToken(result._id, event._id as { _data: string })) {
      fail(
        Codes.ChangeStreamFatalError,
        "Encountered an event whose _id field, which contains the resume token, was modified by the pipeline. Modifying the _id field of an event makes it impossible to resume the stream from that point. Only transformations that retain the unmodified _id field are allowed.",
        NON_RESUMABLE,
      );
    }
    return result;
  }

  /** The events one oplog entry produces for this stream, as [token, lazy event] pairs in order. */
  private expand(e: OplogEntry): Array<[string, () => Document]> {
    const { spec } = this;
    const token = (seq: number, fromInvalidate = false) => encodeToken({ ts: e.ts, kind: "event", seq, fromInvalidate });
    const base = (seq: number, operationType: string, inv = false): Document => ({
      _id: { _data: token(seq, inv) },
      operationType,
      clusterTime: e.ts,
      wallTime: e.wall,
    });
    // Built only by the entries that end a stream (drop, rename, dropDatabase), not for every write.
    const invalidate = (): [string, () => Document] => [token(1, true), () => base(1, "invalidate", true)];

    if (e.op === "noop") return [];
    if (e.op === "applyOps") return this.transactionEvents(e);
    // DDL entries other than drop/rename/dropDatabase are expanded events; view definitions are
    // seen only by database and cluster streams (they live in system.views on mongod).
    if ((DDL_OPS.has(e.op) || e.view) && !spec.showExpandedEvents) return [];
    if (e.view && spec.level === "collection") return [];
    if (spec.level === "cluster" && (INTERNAL_DBS.has(e.db) || e.coll?.startsWith("system."))) return [];
    if (e.db !== spec.db && spec.level !== "cluster") return [];
    // A collection stream also sees (and is invalidated by) a rename onto its namespace
    // (change_stream_filter_helpers.cpp: `o.renameCollection: {$exists: true}, o.to: <ns>`).
    const renamedOnto = e.op === "rename" && e.to?.db === spec.db && e.to.coll === spec.coll;
    if (spec.level === "collection" && e.coll !== spec.coll && !renamedOnto && e.op !== "dropDatabase") return [];
    const ns = { db: e.db, coll: e.coll };
    const expanded = spec.showExpandedEvents ? { collectionUUID: e.collectionUUID } : {};

    switch (e.op) {
      case "insert":
      case "update":
      case "replace":
      case "delete":
        return [[token(0), () => this.crudEvent(e, e as TxnOp, base(0, e.op), {})]];
      case "drop": {
        if (e.view) return [[token(0), () => ({ ...base(0, "drop"), ns })]];
        const drop: [string, () => Document] = [token(0), () => ({ ...base(0, "drop"), ...expanded, ns })];
        return spec.level === "collection" ? [drop, invalidate()] : [drop];
      }
      case "rename": {
        // The top-level `to` predates operationDescription (5.3+), which only expanded streams get.
        const description = spec.showExpandedEvents ? { operationDescription: e.operationDescription } : {};
        const rename: [string, () => Document] = [token(0), () => ({ ...base(0, "rename"), ...expanded, ns, to: e.to, ...description })];
        return spec.level === "collection" ? [rename, invalidate()] : [rename];
      }
      case "create":
        // A view's create event has no collectionUUID (views have none).
        if (e.view) return [[token(0), () => ({ ...base(0, "create"), ns, operationDescription: e.operationDescription })]];
        return [[token(0), () => ({ ...base(0, "create"), ...expanded, ns, operationDescription: e.operationDescription })]];
      case "createIndexes":
      case "dropIndexes":
        return [[token(0), () => ({ ...base(0, e.op), ...expanded, ns, operationDescription: e.operationDescription })]];
      case "collMod":
        return [
          [token(0), () => ({ ...base(0, "modify"), ...expanded, ns, operationDescription: e.operationDescription, stateBeforeChange: e.stateBeforeChange })],
        ];
      case "dropDatabase":
        if (spec.level === "collection") return [];
        if (spec.level === "database") return [[token(0), () => ({ ...base(0, "dropDatabase"), ns: { db: e.db } })], invalidate()];
        return [[token(0), () => ({ ...base(0, "dropDatabase"), ns: { db: e.db } })]];
    }
  }

  /**
   * A committed transaction: one event per write, all at the entry's cluster time, each
   * token carrying the write's index in the transaction (txnOpIndex), so the events sort
   * in transaction order and a resume token names one of them. Each event also names the
   * session and transaction number that wrote it (docs: change events, `lsid`, `txnNumber`).
   */
  private transactionEvents(e: OplogEntry): Array<[string, () => Document]> {
    const { spec } = this;
    const txn = { lsid: e.lsid, txnNumber: Long.fromNumber(e.txnNumber!) };
    const out: Array<[string, () => Document]> = [];
    e.ops!.forEach((op, txnOpIndex) => {
      if (spec.level === "cluster" && (INTERNAL_DBS.has(op.db) || op.coll?.startsWith("system."))) return;
      if (spec.level !== "cluster" && op.db !== spec.db) return;
      if (spec.level === "collection" && op.coll !== spec.coll) return;
      const token = encodeToken({ ts: e.ts, kind: "event", seq: txnOpIndex, fromInvalidate: false });
      out.push([token, () => this.crudEvent(e, op, { _id: { _data: token }, operationType: op.op, clusterTime: e.ts, wallTime: e.wall }, txn)]);
    });
    return out;
  }

  /** The event of one insert, update, replace or delete (`op` is the entry itself, or one write of a transaction). */
  private crudEvent(e: OplogEntry, op: TxnOp, base: Document, txn: Document): Document {
    const ns = { db: op.db, coll: op.coll };
    const expanded = this.spec.showExpandedEvents ? { collectionUUID: op.collectionUUID } : {};
    const documentKey = { _id: op.id };
    switch (op.op) {
      case "insert":
        return { ...base, ...expanded, fullDocument: op.post, ns, documentKey, ...txn };
      case "update":
        return this.withImages(op, { ...base, ...expanded, ns, documentKey, updateDescription: this.describe(op.updateDescription!), ...txn }, true);
      case "replace":
        return this.withImages(op, { ...base, ...expanded, fullDocument: op.post, ns, documentKey, ...txn }, false);
      case "delete":
        return this.withImages(op, { ...base, ...expanded, ns, documentKey, ...txn }, false);
    }
  }

  /** disambiguatedPaths is an expanded-event field on 7.0 (docs/mongodb.md#change-stream-events). */
  private describe(d: UpdateDescription): Document {
    const { disambiguatedPaths, ...rest } = d;
    return this.spec.showExpandedEvents ? { ...rest, disambiguatedPaths } : rest;
  }

  /** Adds fullDocument (updates only) and fullDocumentBeforeChange as the stream asked. */
  private withImages(e: TxnOp, event: Document, isUpdate: boolean): Document {
    const { fullDocument, fullDocumentBeforeChange } = this.spec;
    if (isUpdate && fullDocument !== "default") {
      if (fullDocument === "updateLookup") {
        event.fullDocument = this.store.get(e.db, e.coll!)?.docs.get(valueKey(e.id)) ?? null;
      } else {
        const post = e.images ? e.post : undefined;
        if (!post && fullDocument === "required") missingImage("post", event);
        event.fullDocument = post ?? null;
      }
    }
    if (fullDocumentBeforeChange !== "off") {
      const pre = e.images ? e.pre : undefined;
      if (!pre && fullDocumentBeforeChange === "required") missingImage("pre", event);
      event.fullDocumentBeforeChange = pre ?? null;
    }
    return event;
  }
}

/**
 * The stages as one function of an event, compiled once: mingo compiles a pipeline each time it is
 * run (a Query per $match, each condition deep-cloned; the projections), which cost more than
 * evaluating it on one event. $$NOW is not left to mingo (its stages would read the clock at different
 * moments, some once per cursor, some per event): the reader replaced it by the opening time (withNow).
 *
 * A `$unset` of plain paths is a part of its own, skipped for an event that holds none of them (most
 * events of a stream that redacts private fields): mingo's $unset copies the event and walks every
 * path even then, and the result is the event as it was.
 */
function compilePipeline(stages: Document[]): (event: Document) => Document | undefined {
  const parts: Array<{ run: (doc: unknown) => unknown; unset?: string[][] }> = [];
  let run: Document[] = [];
  const flush = () => {
    if (run.length > 0) parts.push({ run: compileStages(run) });
    run = [];
  };
  for (const stage of stages) {
    const unset = unsetPaths(stage);
    if (!unset) {
      run.push(stage);
      continue;
    }
    flush();
    parts.push({ run: compileStages([stage]), unset });
  }
  flush();
  return (event) => {
    let doc: unknown = event;
    for (const part of parts) {
      if (part.unset && isPlain(doc) && !part.unset.some((path) => mayRemove(doc as Document, path))) continue;
      doc = part.run(doc);
      if (doc === DROPPED) return undefined;
    }
    return doc as Document | undefined;
  };
}

/**
 * The stages with every `$$NOW` in an expression replaced by `now` as a literal: mongod sets NOW once
 * when the aggregate runs, the same in all stages and, for a change stream, for every event of the
 * cursor. Only expressions: a `$match` outside `$expr` compares with "$$NOW" as a plain string, and a
 * `$literal` is left as written.
 */
function withNow(stages: Document[], now: Date): Document[] {
  const replace = (value: unknown): unknown => {
    if (value === "$$NOW") return { $literal: now };
    if (Array.isArray(value)) return value.map(replace);
    if (value === null || typeof value !== "object" || Object.getPrototypeOf(value) !== Object.prototype) return value;
    const out: Document = {};
    for (const [key, inner] of Object.entries(value)) out[key] = key === "$literal" ? inner : replace(inner);
    return out;
  };
  const inMatch = (query: unknown): unknown => {
    if (Array.isArray(query)) return query.map(inMatch);
    if (query === null || typeof query !== "object" || Object.getPrototypeOf(query) !== Object.prototype) return query;
    const out: Document = {};
    for (const [key, inner] of Object.entries(query))
      out[key] = key === "$expr" ? replace(inner) : key === "$and" || key === "$or" || key === "$nor" ? inMatch(inner) : inner;
    return out;
  };
  if (!JSON.stringify(stages).includes("$$NOW")) return stages;
  return stages.map((stage) => {
    const [name] = Object.keys(stage);
    if (name === undefined) return stage;
    return { [name]: name === "$match" ? inMatch(stage[name]) : replace(stage[name]) };
  });
}

/** A part's answer for an event one of its $match stages dropped. */
const DROPPED = Symbol("dropped");

/**
 * One lazy sequence over a source that holds at most the document being evaluated: every stage
 * allowed in a change stream maps or filters one document at a time, so the sequence yields that
 * document's result (which a map may make undefined: it then flows on, as in one mingo run), or ends
 * when a $match drops it.
 */
function compileStages(stages: Document[]): (doc: unknown) => unknown {
  let pending: unknown;
  let has = false;
  const source = (): { done: boolean; value: unknown } => {
    if (!has) return { done: true, value: undefined };
    has = false;
    return { done: false, value: pending };
  };
  const results = new Aggregator(stages).stream(source);
  return (doc) => {
    pending = doc;
    has = true;
    try {
      const step = results.next();
      return step.done ? DROPPED : step.value;
    } finally {
      has = false;
      pending = undefined;
    }
  };
}

/**
 * The paths of `{$unset: path | [paths]}` as segments, or undefined for a stage that is not one, or
 * whose paths mingo might read otherwise than segment by segment (empty segments, `__proto__`).
 */
function unsetPaths(stage: Document): string[][] | undefined {
  if (Object.keys(stage).length !== 1) return undefined;
  const spec = stage.$unset as unknown;
  const list = typeof spec === "string" ? [spec] : Array.isArray(spec) ? spec : undefined;
  if (!list || list.length === 0) return undefined;
  const paths: string[][] = [];
  for (const path of list) {
    if (typeof path !== "string") return undefined;
    const segments = path.split(".");
    if (segments.some((s) => s === "" || s === "__proto__")) return undefined;
    paths.push(segments);
  }
  return paths;
}

function isPlain(value: unknown): value is Document {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Whether removing `path` could change `doc`. mingo's walk stops at a missing or falsy value and
 * deletes only an own key; an array or any other value on the way is left to mingo (true).
 */
function mayRemove(doc: Document, path: string[]): boolean {
  let cur: Document = doc;
  for (let k = 0; k < path.length - 1; k++) {
    const next: unknown = cur[path[k]!];
    if (!next) return false;
    if (!isPlain(next)) return true;
    cur = next;
  }
  return Object.hasOwn(cur, path[path.length - 1]!);
}

/** Whether a pipeline's output `_id` is still the event's resume token (valueKey only when it is not plainly so). */
function sameToken(id: unknown, token: { _data: string }): boolean {
  if (id !== null && typeof id === "object" && Object.getPrototypeOf(id) === Object.prototype) {
    const keys = Object.keys(id);
    if (keys.length === 1 && keys[0] === "_data" && (id as { _data: unknown })._data === token._data) return true;
  }
  return valueKey(id) === valueKey(token);
}

/** 47 is not in mongod's NonResumableChangeStreamError class (only 280 and 286 are), so no label. */
function missingImage(which: "pre" | "post", event: Document): never {
  fail(
    Codes.NoMatchingDocument,
    `Change stream was configured to require a ${which}-image for all update, delete and replace events, but the ${which}-image was not found for event: ${JSON.stringify(event._id)}`,
  );
}

function nextTs(ts: Timestamp): Timestamp {
  return new (ts.constructor as typeof Timestamp)({ t: ts.t, i: ts.i + 1 });
}

export interface OpenedStream {
  spec: ChangeStreamSpec;
  start: string;
  stages: Document[];
}

/**
 * Validates `{aggregate: target, pipeline: [{$changeStream: {...}}, ...]}` and
 * works out where the stream starts. `target` is a collection name or 1.
 */
export function openChangeStream(db: string, target: unknown, pipeline: Document[], oplog: Oplog, topologyIsReplicaSet: boolean): OpenedStream {
  if (!topologyIsReplicaSet) fail(40573, "The $changeStream stage is only supported on replica sets");
  const options = (pipeline[0]!.$changeStream ?? {}) as Document;
  if (typeof options !== "object" || Array.isArray(options)) fail(Codes.TypeMismatch, "the $changeStream stage must be an object");
  for (const key of Object.keys(options)) {
    if (!STAGE_OPTIONS.has(key)) fail(40415, `BSON field '$changeStream.${key}' is an unknown field.`);
  }
  const stages = pipeline.slice(1);
  for (const stage of stages) {
    const name = Object.keys(stage)[0];
    if (ALLOWED_STAGES.has(name!)) continue;
    if (KNOWN_STAGES.has(name!)) fail(Codes.IllegalOperation, `${name} is not permitted in a $changeStream pipeline`);
    fail(Codes.UnrecognizedPipelineStage, `Unrecognized pipeline stage name: '${name}'`);
  }

  const fullDocument = options.fullDocument ?? "default";
  if (!FULL_DOCUMENT.has(fullDocument)) fail(Codes.BadValue, `unrecognized fullDocument option: ${fullDocument}`);
  const fullDocumentBeforeChange = options.fullDocumentBeforeChange ?? "off";
  if (!BEFORE_CHANGE.has(fullDocumentBeforeChange)) fail(Codes.BadValue, `unrecognized fullDocumentBeforeChange option: ${fullDocumentBeforeChange}`);

  // Checks in the order of DocumentSourceChangeStream::assertIsLegalSpecification.
  if (options.allChangesForCluster === true && (db !== "admin" || typeof target === "string")) {
    fail(
      Codes.InvalidOptions,
      `A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' database, and with no collection name; found ${db}.${typeof target === "string" ? target : "$cmd.aggregate"}`,
    );
  }
  let level: Level;
  if (typeof target === "string") level = "collection";
  else if (db === "admin") level = "cluster";
  else level = "database";
  if (db === "admin" ? options.allChangesForCluster !== true : INTERNAL_DBS.has(db)) {
    fail(Codes.InvalidNamespace, `$changeStream may not be opened on the internal ${db} database`);
  }
  if (typeof target === "string" && target.startsWith("system.") && options.allowToRunOnSystemNS !== true) {
    fail(Codes.InvalidNamespace, `$changeStream may not be opened on the internal ${db}.${target} collection`);
  }
  if (options.resumeAfter !== undefined && options.startAfter !== undefined) {
    fail(50865, "Do not specify both 'resumeAfter' and 'startAfter' in a $changeStream stage");
  }
  if ((options.resumeAfter ?? options.startAfter) !== undefined && options.startAtOperationTime !== undefined) {
    fail(40674, "Only one type of resume option is allowed, but multiple were found");
  }

  let start: string;
  const token = options.resumeAfter ?? options.startAfter;
  if (token !== undefined) {
    const data = decodeToken(token);
    if (!data) fail(Codes.FailedToParse, "Bad resume token: _data of missing or of wrong type");
    if (options.resumeAfter && data.fromInvalidate) {
      fail(Codes.InvalidResumeToken, "Attempting to resume a change stream using 'resumeAfter' is not allowed from an invalidate notification.");
    }
    // Whether an event token names an event of this stream is checked as the stream reads (280).
    start = (token as { _data: string })._data;
  } else if (options.startAtOperationTime !== undefined) {
    const ts = options.startAtOperationTime as Timestamp;
    if (typeof ts?.t !== "number") fail(Codes.TypeMismatch, "startAtOperationTime must be a Timestamp");
    start = hwmToken(ts); // inclusive: a HWM at T sorts before the events at T
  } else {
    start = hwmToken(nextTs(oplog.lastTs));
  }

  const spec: ChangeStreamSpec = {
    level,
    db,
    coll: typeof target === "string" ? target : undefined,
    fullDocument,
    fullDocumentBeforeChange,
    showExpandedEvents: options.showExpandedEvents === true,
  };
  return { spec, start, stages };
}
