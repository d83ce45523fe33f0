/**
 * One driver change event → one typed flow event, or a reasoned skip.
 *
 * Pure and total: bad input never throws, it becomes `{ skip, detail }` so the
 * watcher can log and count it and keep the stream up. The caller owns the
 * id → flowId cache (`lookupFlowId`): it should record `{ id → flowId }` from
 * every mapped event (and from snapshots) and forget it on delete.
 *
 * Routing, in order:
 * 1. `fullDocument` when the event has one (insert, replace, update with a
 *    post-image or updateLookup): its routing field decides. A document without
 *    it belongs to no flow → skip "unroutable".
 * 2. otherwise `fullDocumentBeforeChange` (delete/update with a pre-image);
 * 3. otherwise `lookupFlowId(id, collection)` (delete without pre-image, update
 *    whose document was deleted before the lookup).
 * A routing value that is not a valid flowId (schemas.ts) → skip "flowId-invalid".
 */
import { z } from "zod";
import { idToString, timestampToString, toPlainJson } from "./plain-json";
import { redactChanges, redactDoc } from "./redact";
import { isValidFlowId, OPERATIONS, type Changes, type DocEvent, type Operation } from "./schemas";
import { isTokenHex } from "./cursor";
import type { Rule } from "./rule";

export type FlowIdLookup = (id: string, collection: string) => string | undefined;

export interface MappedChange {
  readonly event: DocEvent;
  readonly flowId: string;
  /** The change's resume token `_data` (uppercase hex): its position in the stream. */
  readonly token: string;
  readonly collection: string;
}

export type SkipReason =
  /** Not a change event we understand (no resume token, no documentKey, …). */
  | "malformed"
  /** A lifecycle event (invalidate, drop, rename, dropDatabase): the watcher's business. */
  | "lifecycle"
  /** Collection or operation not covered by a filter (only if the pipeline let it through). */
  | "unwatched"
  /** No routing value anywhere: no field in the document, no pre-image, not in the cache. */
  | "unroutable"
  /** A routing value that is not a non-empty string without control characters. */
  | "flowId-invalid"
  /** The document failed the filter's zod schema. */
  | "schema";

export interface SkippedChange {
  readonly skip: SkipReason;
  readonly detail: string;
  /** Present whenever the event had a valid token, so the watcher can still advance past it. */
  readonly token?: string;
}

export type MapResult = MappedChange | SkippedChange;

type Obj = Record<string, unknown>;
const OPERATION_SET: ReadonlySet<string> = new Set(OPERATIONS);

function isObj(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function getPath(doc: Obj, path: readonly string[]): unknown {
  let current: unknown = doc;
  for (const segment of path) {
    if (!isObj(current)) return undefined;
    current = current[segment];
  }
  return current;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  const bsonType = typeof value === "object" ? (value as { _bsontype?: unknown })._bsontype : undefined;
  if (typeof bsonType === "string") return `a BSON ${bsonType} (flowIds are strings)`;
  if (typeof value === "string") return value === "" ? "an empty string" : "a string with control characters or too long";
  return `a value of type ${Array.isArray(value) ? "array" : typeof value}`;
}

function toChanges(update: unknown): Changes | undefined {
  if (!isObj(update) || !isObj(update.updatedFields) || !Array.isArray(update.removedFields)) return undefined;
  const set = toPlainJson(update.updatedFields) as Obj;
  const unset = update.removedFields.filter((f): f is string => typeof f === "string");
  const changes: Changes = { set, unset };
  const truncated = (Array.isArray(update.truncatedArrays) ? update.truncatedArrays : [])
    .filter(isObj)
    .map((t) => ({ field: t.field, newSize: toPlainJson(t.newSize) }))
    .filter((t): t is { field: string; newSize: number } => typeof t.field === "string" && typeof t.newSize === "number");
  if (truncated.length > 0) changes.truncated = truncated;
  return changes;
}

/**
 * Maps one change event (as the driver returns it: BSON values) with the
 * compiled rules. See the module comment for routing; see schemas.ts for the
 * resulting fields.
 */
export function mapChange(change: unknown, rules: ReadonlyMap<string, Rule>, lookupFlowId?: FlowIdLookup): MapResult {
  try {
    return mapUnchecked(change, rules, lookupFlowId);
  } catch (err) {
    // Only reachable through hostile input (throwing getters, a schema whose refine throws).
    return { skip: "malformed", detail: `mapping failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function mapUnchecked(change: unknown, rules: ReadonlyMap<string, Rule>, lookupFlowId?: FlowIdLookup): MapResult {
  if (!isObj(change)) return { skip: "malformed", detail: "not an object" };
  const token = isObj(change._id) ? change._id._data : undefined;
  if (!isTokenHex(token)) return { skip: "malformed", detail: "no resume token (_id._data)" };
  const skip = (reason: SkipReason, detail: string): SkippedChange => ({ skip: reason, detail, token });

  const op = change.operationType;
  if (typeof op !== "string") return skip("malformed", "no operationType");
  if (!OPERATION_SET.has(op)) return skip("lifecycle", op);
  const collection = isObj(change.ns) ? change.ns.coll : undefined;
  if (typeof collection !== "string") return skip("malformed", `${op} without ns.coll`);
  const rule = rules.get(collection);
  if (!rule || !rule.operations.has(op as Operation)) return skip("unwatched", `${op} on ${collection}`);

  if (!isObj(change.documentKey) || change.documentKey._id === undefined) {
    return skip("malformed", `${op} on ${collection} without documentKey._id`);
  }
  const id = idToString(change.documentKey._id);
  const clusterTime = timestampToString(change.clusterTime);
  if (clusterTime === undefined) return skip("malformed", `${op} on ${collection} ${id} without clusterTime`);
  const where = `${collection} ${id}`;

  const post = isObj(change.fullDocument) ? (toPlainJson(change.fullDocument) as Obj) : undefined;
  const pre = isObj(change.fullDocumentBeforeChange) ? (toPlainJson(change.fullDocumentBeforeChange) as Obj) : undefined;
  if ((op === "insert" || op === "replace") && !post) return skip("malformed", `${op} on ${where} without fullDocument`);

  // Routed by the value AS STORED, not by its JSON form: an ObjectId, Timestamp or Date is not a
  // flowId. The catch-up stream and the snapshot select a flow by string equality inside MongoDB,
  // so routing a converted value live would deliver events that no resume or snapshot could see.
  let route: unknown;
  if (post) {
    route = getPath(change.fullDocument as Obj, rule.routePath);
    if (route === undefined) return skip("unroutable", `${where}: document has no '${rule.routeBy}'`);
  } else if (pre && getPath(change.fullDocumentBeforeChange as Obj, rule.routePath) !== undefined) {
    route = getPath(change.fullDocumentBeforeChange as Obj, rule.routePath);
  } else {
    route = lookupFlowId?.(id, collection);
    if (route === undefined) return skip("unroutable", `${op} on ${where}: no image and not in the id cache`);
  }
  if (!isValidFlowId(route)) return skip("flowId-invalid", `${where}: '${rule.routeBy}' is ${describe(route)}`);
  const flowId = route;

  let doc: Obj | null = null;
  if (post && op !== "delete") {
    doc = redactDoc(post, rule.privateFields);
    // Validation only: the document goes out as stored (field order, unknown fields),
    // so a schema's defaults or transforms never rewrite what the database says.
    const parsed = rule.schema?.safeParse(doc);
    if (parsed && !parsed.success) return skip("schema", `${where} (${rule.source}): ${z.prettifyError(parsed.error)}`);
  }

  const common = { flowId, op, id, ...(rule.entity === undefined ? {} : { entity: rule.entity }), clusterTime, doc };
  let data: Obj = common;
  if (op === "update") {
    const changes = toChanges(change.updateDescription);
    if (!changes) return skip("malformed", `update on ${where} without a valid updateDescription`);
    data = { ...common, changes: redactChanges(changes, rule.privateFields) };
  }
  // The shapes above follow schemas.ts by construction; tests parse the result with flowEventSchema.
  const event = { type: rule.event, data } as unknown as DocEvent;
  return { event, flowId, token, collection };
}
