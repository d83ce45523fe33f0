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
import type { ClusterTime } from "../token";
import { deriveElements, documentChanges, withoutElements, type Derivation, type ElementSkip, type UpdateDescriptionJson } from "./elements";

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
 * resulting fields. One change, one event: a filter with `entities` maps its
 * document as a whole here; `mapChanges` (what the feed uses) splits it into elements.
 */
export function mapChange(change: unknown, rules: ReadonlyMap<string, Rule>, lookupFlowId?: FlowIdLookup): MapResult {
  try {
    return mapUnchecked(change, rules, lookupFlowId);
  } catch (err) {
    // Only reachable through hostile input (throwing getters, a schema whose refine throws).
    return { skip: "malformed", detail: `mapping failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

interface Prepared {
  readonly rule: Rule;
  readonly op: Operation;
  readonly token: string;
  readonly collection: string;
  readonly id: string;
  readonly clusterTime: string;
  readonly flowId: string;
  readonly where: string;
  /** The redacted, schema-checked `fullDocument` (null on delete or when there is none). */
  readonly doc: Obj | null;
  readonly post: Obj | undefined;
  readonly pre: Obj | undefined;
}

/** What every document change goes through first: shape checks, routing, redaction, schema. */
/**
 * `convert: false` (embedded entities): the images are left as the driver gave them, unconverted and
 * unchecked; events/elements.ts converts only the elements that changed (a 200-node document is
 * most of the cost of a change otherwise), and the caller checks the schema on the document part.
 */
function prepare(change: unknown, rules: ReadonlyMap<string, Rule>, lookupFlowId?: FlowIdLookup, convert = true): Prepared | SkippedChange {
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

  const post = isObj(change.fullDocument) && convert ? (toPlainJson(change.fullDocument) as Obj) : undefined;
  const pre = isObj(change.fullDocumentBeforeChange) && convert ? (toPlainJson(change.fullDocumentBeforeChange) as Obj) : undefined;
  if ((op === "insert" || op === "replace") && !isObj(change.fullDocument)) return skip("malformed", `${op} on ${where} without fullDocument`);

  // Routed by the value AS STORED, not by its JSON form: an ObjectId, Timestamp or Date is not a
  // flowId. The catch-up stream and the snapshot select a flow by string equality inside MongoDB,
  // so routing a converted value live would deliver events that no resume or snapshot could see.
  // `routeBy: "_id"` is the exception: the document is the flow, named by its id as events name it
  // (an ObjectId as its hex), and the catch-up and the snapshot select it by that id (compile.ts).
  let route: unknown;
  if (rule.routeBy === "_id") {
    route = id;
  } else if (isObj(change.fullDocument)) {
    route = getPath(change.fullDocument as Obj, rule.routePath);
    if (route === undefined) return skip("unroutable", `${where}: document has no '${rule.routeBy}'`);
  } else if (isObj(change.fullDocumentBeforeChange) && getPath(change.fullDocumentBeforeChange as Obj, rule.routePath) !== undefined) {
    route = getPath(change.fullDocumentBeforeChange as Obj, rule.routePath);
  } else {
    route = lookupFlowId?.(id, collection);
    if (route === undefined) return skip("unroutable", `${op} on ${where}: no image and not in the id cache`);
  }
  if (!isValidFlowId(route)) return skip("flowId-invalid", `${where}: '${rule.routeBy}' is ${describe(route)}`);

  let doc: Obj | null = null;
  if (post && op !== "delete") {
    doc = redactDoc(post, rule.privateFields);
    // Validation only: the document goes out as stored (field order, unknown fields),
    // so a schema's defaults or transforms never rewrite what the database says.
    const parsed = rule.schema?.safeParse(doc);
    if (parsed && !parsed.success) return skip("schema", `${where} (${rule.source}): ${z.prettifyError(parsed.error)}`);
  }
  return {
    rule,
    op: op as Operation,
    token,
    collection,
    id,
    clusterTime,
    flowId: route,
    where,
    doc,
    post,
    pre: pre && redactDoc(pre, rule.privateFields),
  };
}

function mapUnchecked(change: unknown, rules: ReadonlyMap<string, Rule>, lookupFlowId?: FlowIdLookup): MapResult {
  const p = prepare(change, rules, lookupFlowId);
  if ("skip" in p) return p;
  const { rule, op, id, clusterTime, flowId, doc, token, collection } = p;
  const common = { flowId, op, id, ...(rule.entity === undefined ? {} : { entity: rule.entity }), clusterTime, doc };
  let data: Obj = common;
  if (op === "update") {
    const changes = toChanges((change as Obj).updateDescription);
    if (!changes) return { skip: "malformed", detail: `update on ${p.where} without a valid updateDescription`, token };
    data = { ...common, changes: redactChanges(changes, rule.privateFields) };
  }
  // The shapes above follow schemas.ts by construction; tests parse the result with flowEventSchema.
  const event = { type: rule.event, data } as unknown as DocEvent;
  return { event, flowId, token, collection };
}

/** The events of one change, in order, with what the derivation found on the way. */
export interface MappedChanges {
  readonly events: readonly DocEvent[];
  readonly flowId: string;
  readonly token: string;
  readonly collection: string;
  /** The document's id (the event `id` of its document-level events). */
  readonly id: string;
  readonly clusterTime: ClusterTime;
  /** Elements left out (logged and counted by the caller); the rest of the change still flows. */
  readonly skips: readonly ElementSkip[];
  /** How each entity kind's events were derived (counted by the caller). */
  readonly derivations: readonly Derivation[];
}

/**
 * Maps one change into all of its events: exactly one for a filter without `entities`
 * (as `mapChange`), and for a document of embedded entities the document-level event
 * (when the document's own fields changed) followed by one event per changed element
 * (events/elements.ts), possibly none.
 */
export function mapChanges(change: unknown, rules: ReadonlyMap<string, Rule>, lookupFlowId?: FlowIdLookup): MappedChanges | SkippedChange {
  try {
    return mapAllUnchecked(change, rules, lookupFlowId);
  } catch (err) {
    return { skip: "malformed", detail: `mapping failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function clusterTimeOf(text: string): ClusterTime {
  const [t, i] = text.split(".");
  return { t: Number(t), i: Number(i) };
}

function mapAllUnchecked(change: unknown, rules: ReadonlyMap<string, Rule>, lookupFlowId?: FlowIdLookup): MappedChanges | SkippedChange {
  const collection = isObj(change) && isObj(change.ns) ? change.ns.coll : undefined;
  const rule = typeof collection === "string" ? rules.get(collection) : undefined;
  if (!rule || rule.elements.length === 0) {
    const one = mapUnchecked(change, rules, lookupFlowId);
    if ("skip" in one) return one;
    return { ...one, events: [one.event], id: one.event.data.id, clusterTime: clusterTimeOf(one.event.data.clusterTime), skips: [], derivations: [] };
  }
  const p = prepare(change, rules, lookupFlowId, false);
  if ("skip" in p) return p;
  const { op, id, flowId, token, where } = p;
  const raw = change as Obj;
  const rawPre = isObj(raw.fullDocumentBeforeChange) ? raw.fullDocumentBeforeChange : undefined;
  const rawPost = isObj(raw.fullDocument) ? raw.fullDocument : undefined;
  let update: UpdateDescriptionJson | undefined;
  let changes: Changes | undefined;
  if (op === "update") {
    const ud = raw.updateDescription;
    changes = toChanges(ud);
    if (!changes) return { skip: "malformed", detail: `update on ${where} without a valid updateDescription`, token };
    changes = redactChanges(changes, rule.privateFields);
    // The update description as the driver gave it (BSON values, like the images it applies to), minus private keys.
    const kept = changes.set;
    const updatedFields = Object.fromEntries(Object.entries((ud as Obj).updatedFields as Obj).filter(([key]) => Object.hasOwn(kept, key)));
    const paths = isObj(ud) && isObj(ud.disambiguatedPaths) ? (toPlainJson(ud.disambiguatedPaths) as UpdateDescriptionJson["disambiguatedPaths"]) : undefined;
    update = { updatedFields, removedFields: changes.unset, truncatedArrays: changes.truncated ?? [], ...(paths ? { disambiguatedPaths: paths } : {}) };
  }
  const derived = deriveElements(rule.elements, { op, pre: rawPre, post: rawPost, update });
  // The document-level part: plain JSON without the entity paths and the private fields.
  const part = (doc: Obj) => redactDoc(toPlainJson(withoutElements(doc, rule.elements)) as Obj, rule.privateFields);
  const after = derived.after ?? (op === "delete" ? undefined : rawPost);
  const afterPart = after && part(after);
  // The filter's schema checks the document without its elements (they have no schema of their own).
  const parsed = afterPart && rule.schema?.safeParse(afterPart);
  if (parsed && !parsed.success) return { skip: "schema", detail: `${where} (${rule.source}): ${z.prettifyError(parsed.error)}`, token };

  const base = { flowId, clusterTime: p.clusterTime };
  const events: DocEvent[] = [];
  const own = (data: Obj) => events.push({ type: rule.event, data: { ...base, ...data } } as unknown as DocEvent);
  const docLevel = rule.entity!;
  if (op === "insert" || op === "replace") own({ op, id, entity: docLevel, doc: afterPart });
  else if (op === "delete") own({ op, id, entity: docLevel, doc: null });
  else {
    const mine = rawPre && derived.after && sameJson(part(rawPre), afterPart) ? undefined : documentChanges(changes!, rule.elements);
    if (mine) own({ op, id, entity: docLevel, doc: afterPart ?? null, changes: mine });
  }
  for (const kind of derived.kinds) {
    const entity = kind.rule.entity;
    if ("replaceAll" in kind) {
      own({ op: "replace", id, entity, doc: {}, elements: kind.replaceAll, key: kind.rule.key });
      continue;
    }
    for (const e of kind.events) {
      own({ op: e.op, id: e.id, entity, doc: e.doc, ...(e.changes ? { changes: e.changes } : {}) });
    }
  }
  return {
    events,
    flowId,
    token,
    collection: p.collection,
    id,
    clusterTime: clusterTimeOf(p.clusterTime),
    skips: derived.skips,
    derivations: derived.kinds.map((k) => k.how),
  };
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
