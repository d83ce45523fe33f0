/**
 * The wire contract, defined once: what arrives in each SSE `data:` line, per
 * `event:` type, and what `GET …/flows/:flowId/snapshot` answers. The service
 * imports these types and constants (`flowsync-client/wire`); its zod schemas
 * are checked against them at compile time, so the two cannot drift.
 *
 * Event data fields (all document events):
 * - `flowId`       the flow the document belongs to (the filter's routing field).
 * - `op`           `insert` | `update` | `replace` | `delete`.
 * - `id`           the document's `_id` as a string: ObjectId → 24 hex chars, string → as is,
 *                  anything else → its plain-JSON form (a number's digits, otherwise JSON text).
 * - `clusterTime`  the oplog time of the change, `"<seconds>.<increment>"`; orders events
 *                  across collections (equal for the writes of one transaction).
 * - `doc`          the document AFTER the change, private fields removed, as plain JSON:
 *                  insert/replace → the new document; update → the document as looked up
 *                  when the change was read (it may already include later writes) or `null`
 *                  if it no longer existed; delete → always `null`.
 * - `changes`      updates only: `set` (dotted path → new value, as MongoDB reports it),
 *                  `unset` (removed paths), and `truncated` (arrays shortened in place,
 *                  present only when non-empty).
 * - `entity`       `SYNC_CANVAS` only: which canvas store the document belongs to (`node`, `edge`, …).
 * - `elements`, `key`  `SYNC_CANVAS` `replace` only, for entities embedded in one flow document:
 *                  the event replaces every `entity` of the flow with `elements` (as stored, private
 *                  fields removed), each named by its field `key`; `id` is the flow document's id and
 *                  `doc` is `{}`. Sent when a change cannot be told element by element (docs/filters.md).
 *
 * Clients should tolerate unknown fields: new fields may be added, never removed.
 *
 * The guards below are hand-written (no zod in the browser: it would be 95 % of
 * the bundle); a differential test holds them to the service's zod schemas.
 * Dependency-free.
 */

/** Event types produced from document changes; a filter picks one of these. */
export const DOC_EVENT_TYPES = ["SYNC_CANVAS", "EXECUTION_UPDATE", "LOG_STREAM"] as const;
export type DocEventType = (typeof DOC_EVENT_TYPES)[number];

export const RESET = "RESET" as const;
export const SNAPSHOT = "SNAPSHOT" as const;
export const PRESENCE = "PRESENCE" as const;
export const EVENT_TYPES = [...DOC_EVENT_TYPES, RESET, SNAPSHOT, PRESENCE] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const OPERATIONS = ["insert", "update", "replace", "delete"] as const;
export type Operation = (typeof OPERATIONS)[number];

/** Why a subscriber must drop its state and refetch. */
export const RESET_REASONS = [
  /** The resume cursor could not be parsed. */
  "cursor-malformed",
  /** The cursor was issued for another deployment or database. */
  "cursor-foreign",
  /** The cursor is well-formed but the stream does not know it. */
  "cursor-unknown",
  /** The cursor is older than the change history (oplog) still available. */
  "history-lost",
  /** The change stream was invalidated (database dropped or renamed) and restarted. */
  "stream-invalidated",
  /** A watched collection was dropped or renamed: its documents are gone from this flow. */
  "collection-dropped",
] as const;
export type ResetReason = (typeof RESET_REASONS)[number];

export const FLOW_ID_MAX_LENGTH = 256;
/** 1 or more characters, none of them a control character (so a flowId can be logged and put in a URL safely). */
export const FLOW_ID_PATTERN = /^\P{Cc}+$/u;
export const CLUSTER_TIME_PATTERN = /^\d+\.\d+$/;

export function isValidFlowId(value: unknown): value is string {
  return typeof value === "string" && value.length <= FLOW_ID_MAX_LENGTH && FLOW_ID_PATTERN.test(value);
}

/** A document as plain JSON. */
export type Doc = Record<string, unknown>;

export interface Changes {
  set: Record<string, unknown>;
  unset: string[];
  truncated?: Array<{ field: string; newSize: number }>;
}

interface Common {
  flowId: string;
  id: string;
  clusterTime: string;
}

/** One shape per op, so that `changes` exists exactly on updates and `doc` is null exactly on deletes. */
export type DocChange<Extra = {}> =
  | (Common & Extra & { op: "insert"; doc: Doc })
  | (Common & Extra & { op: "replace"; doc: Doc })
  | (Common & Extra & { op: "update"; doc: Doc | null; changes: Changes })
  | (Common & Extra & { op: "delete"; doc: null });

export type SyncCanvasData = DocChange<{ entity: string; elements?: Doc[]; key?: string }>;
export type ExecutionUpdateData = DocChange;
export type LogStreamData = DocChange;
export interface ResetData {
  flowId: string;
  reason: ResetReason;
}

/**
 * A flow's state at one point in time (`GET …/flows/:flowId/snapshot`, or a
 * SNAPSHOT event). `cursor` continues the stream exactly after it.
 */
export interface SnapshotData {
  flowId: string;
  /** Subscribe (Last-Event-ID) from here to get every change after the snapshot. */
  cursor: string;
  clusterTime: string;
  /** SYNC_CANVAS documents by entity, e.g. `{ node: [...], edge: [...] }`. */
  canvas: Record<string, Doc[]>;
  /** For kinds embedded in a flow document: the element field that is each element's id (`{ node: "id" }`); other kinds use `_id`. */
  keys?: Record<string, string>;
  /** EXECUTION_UPDATE documents: the latest one of each execution collection. */
  executions: Doc[];
  /** LOG_STREAM documents, only when asked for (`?logs=1`). */
  logs?: Doc[];
}

/** A public claim's value, as the access token carried it. */
export type ClaimValue = string | number | boolean;

/**
 * One user on a flow: `id` (the access token's `sub`, or an anonymous id per connection when
 * auth is off), the public claims the service is configured to show (`name` and `PRESENCE_CLAIMS`),
 * and `connections`: how many streams this user has open on the flow, across every instance.
 */
export interface PresenceUser {
  id: string;
  connections: number;
  /** `name` and the other public claims, when the token had them. */
  [claim: string]: ClaimValue;
}

/**
 * `event: PRESENCE` (sent without `id:`, so `Last-Event-ID` stays a document cursor): who is
 * on the flow now, the full list every time, sorted by `id`. `joined` / `left`: the ids that
 * came or went since this instance's previous PRESENCE frame of the flow (both empty in the
 * first frame of a connection). Presence is state, not history: a resume gets the current list.
 */
export interface PresenceData {
  flowId: string;
  users: PresenceUser[];
  joined: string[];
  left: string[];
}

export type FlowEvent =
  | { type: "SYNC_CANVAS"; data: SyncCanvasData }
  | { type: "EXECUTION_UPDATE"; data: ExecutionUpdateData }
  | { type: "LOG_STREAM"; data: LogStreamData }
  | { type: typeof RESET; data: ResetData }
  | { type: typeof SNAPSHOT; data: SnapshotData }
  | { type: typeof PRESENCE; data: PresenceData };
/** An event made from a document change (everything but RESET, SNAPSHOT and PRESENCE). */
export type DocEvent = Extract<FlowEvent, { type: DocEventType }>;
export type ResetEvent = Extract<FlowEvent, { type: typeof RESET }>;

// --- guards ---------------------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === "string";
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const isDocArray = (v: unknown): v is Doc[] => Array.isArray(v) && v.every(isObject);
const isClusterTime = (v: unknown): v is string => isString(v) && CLUSTER_TIME_PATTERN.test(v);
const isSize = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

function isChanges(v: unknown): v is Changes {
  if (!isObject(v) || !isObject(v.set) || !isStringArray(v.unset)) return false;
  const t = v.truncated;
  return t === undefined || (Array.isArray(t) && t.every((x) => isObject(x) && isString(x.field) && isSize(x.newSize)));
}

function isDocChange(v: unknown, withEntity: boolean): boolean {
  if (!isObject(v) || !isValidFlowId(v.flowId) || !isString(v.id) || !isClusterTime(v.clusterTime)) return false;
  if (withEntity && !(isString(v.entity) && v.entity !== "")) return false;
  if (withEntity && !((v.elements === undefined || isDocArray(v.elements)) && (v.key === undefined || isString(v.key)))) return false;
  switch (v.op) {
    case "insert":
    case "replace":
      return isObject(v.doc);
    case "update":
      return (v.doc === null || isObject(v.doc)) && isChanges(v.changes);
    case "delete":
      return v.doc === null;
    default:
      return false;
  }
}

/** Is `v` a snapshot (the answer of `GET …/snapshot`, or a SNAPSHOT event's data)? */
export function isSnapshotData(v: unknown): v is SnapshotData {
  return (
    isObject(v) &&
    isValidFlowId(v.flowId) &&
    isString(v.cursor) &&
    isClusterTime(v.clusterTime) &&
    isObject(v.canvas) &&
    Object.values(v.canvas).every(isDocArray) &&
    isDocArray(v.executions) &&
    (v.keys === undefined || (isObject(v.keys) && Object.values(v.keys).every(isString))) &&
    (v.logs === undefined || isDocArray(v.logs))
  );
}

const isClaimValue = (v: unknown) => isString(v) || Number.isFinite(v) || typeof v === "boolean";
const isUser = (u: unknown) => isObject(u) && isString(u.id) && isSize(u.connections) && (u.connections as number) > 0 && Object.values(u).every(isClaimValue);

/** Is `v` a PRESENCE event's data? */
export function isPresenceData(v: unknown): v is PresenceData {
  return isObject(v) && isValidFlowId(v.flowId) && Array.isArray(v.users) && v.users.every(isUser) && isStringArray(v.joined) && isStringArray(v.left);
}

/** Is `data` valid for the SSE event named `type`? */
export function isEventData(type: string, data: unknown): boolean {
  switch (type) {
    case "SYNC_CANVAS":
      return isDocChange(data, true);
    case "EXECUTION_UPDATE":
    case "LOG_STREAM":
      return isDocChange(data, false);
    case RESET:
      return isObject(data) && isValidFlowId(data.flowId) && (RESET_REASONS as readonly unknown[]).includes(data.reason);
    case SNAPSHOT:
      return isSnapshotData(data);
    case PRESENCE:
      return isPresenceData(data);
    default:
      return false;
  }
}

/** Parses one SSE message (its `event:` name and `data:` text) into a typed event, or undefined if it is not one. */
export function parseFlowEvent(type: string, dataText: string): FlowEvent | undefined {
  let data: unknown;
  try {
    data = JSON.parse(dataText);
  } catch {
    return undefined;
  }
  return isEventData(type, data) ? ({ type, data } as FlowEvent) : undefined;
}
