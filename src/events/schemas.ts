/**
 * The wire contract: what arrives in each SSE `data:` line, per `event:` type.
 *
 * This module is shared with browser clients (src/client), so it imports zod and
 * nothing else: no Node built-ins, no bson, no server code.
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
 * - `entity`       `SYNC_CANVAS` only: which canvas store the document belongs to (`node`, `edge`).
 *
 * Clients should tolerate unknown fields: new fields may be added, never removed.
 */
import { z } from "zod";

/** Event types produced from document changes; a filter picks one of these. */
export const DOC_EVENT_TYPES = ["SYNC_CANVAS", "EXECUTION_UPDATE", "LOG_STREAM"] as const;
export type DocEventType = (typeof DOC_EVENT_TYPES)[number];

export const RESET = "RESET" as const;
export const SNAPSHOT = "SNAPSHOT" as const;
export const EVENT_TYPES = [...DOC_EVENT_TYPES, RESET, SNAPSHOT] as const;
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
// Control characters are refused so that a flowId can be logged and put in a URL safely.
const FLOW_ID_PATTERN = /^\P{Cc}+$/u;

/** Cheap check used on the hot path (mapping) and by the HTTP layer alike. */
export function isValidFlowId(value: unknown): value is string {
  return typeof value === "string" && value.length <= FLOW_ID_MAX_LENGTH && FLOW_ID_PATTERN.test(value);
}

export const flowIdSchema = z
  .string()
  .min(1)
  .max(FLOW_ID_MAX_LENGTH)
  .regex(FLOW_ID_PATTERN, "must not contain control characters");

export const clusterTimeSchema = z.string().regex(/^\d+\.\d+$/, 'expected "<seconds>.<increment>"');

/** A document as plain JSON (see events/plain-json.ts for how BSON values are converted). */
export const docSchema = z.record(z.string(), z.unknown());

export const changesSchema = z.object({
  set: z.record(z.string(), z.unknown()),
  unset: z.array(z.string()),
  truncated: z.array(z.object({ field: z.string(), newSize: z.number().int().nonnegative() })).optional(),
});
export type Changes = z.infer<typeof changesSchema>;

const commonShape = { flowId: flowIdSchema, id: z.string(), clusterTime: clusterTimeSchema };

// One object per op, so that `changes` exists exactly on updates and `doc` is null exactly on deletes.
function docChangeData<Extra extends z.ZodRawShape>(extra: Extra) {
  return z.discriminatedUnion("op", [
    z.object({ ...commonShape, ...extra, op: z.literal("insert"), doc: docSchema }),
    z.object({ ...commonShape, ...extra, op: z.literal("replace"), doc: docSchema }),
    z.object({ ...commonShape, ...extra, op: z.literal("update"), doc: docSchema.nullable(), changes: changesSchema }),
    z.object({ ...commonShape, ...extra, op: z.literal("delete"), doc: z.null() }),
  ]);
}

export const syncCanvasDataSchema = docChangeData({ entity: z.string().min(1) });
export const executionUpdateDataSchema = docChangeData({});
export const logStreamDataSchema = docChangeData({});
export const resetDataSchema = z.object({ flowId: flowIdSchema, reason: z.enum(RESET_REASONS) });

/**
 * A flow's state at one point in time (`GET …/flows/:flowId/snapshot`, or the first
 * event of `?snapshot=1`). `cursor` continues the stream exactly after it.
 */
export const snapshotDataSchema = z.object({
  flowId: flowIdSchema,
  /** Subscribe (Last-Event-ID) from here to get every change after the snapshot. */
  cursor: z.string(),
  clusterTime: clusterTimeSchema,
  /** SYNC_CANVAS documents by entity, e.g. `{ node: [...], edge: [...] }`. */
  canvas: z.record(z.string(), z.array(docSchema)),
  /** EXECUTION_UPDATE documents: the latest one of each execution collection. */
  executions: z.array(docSchema),
  /** LOG_STREAM documents, only when asked for (`?logs=1`). */
  logs: z.array(docSchema).optional(),
});
export type SnapshotData = z.infer<typeof snapshotDataSchema>;

export type SyncCanvasData = z.infer<typeof syncCanvasDataSchema>;
export type ExecutionUpdateData = z.infer<typeof executionUpdateDataSchema>;
export type LogStreamData = z.infer<typeof logStreamDataSchema>;
export type ResetData = z.infer<typeof resetDataSchema>;

/** Look-up by SSE `event:` name, for clients that parse `MessageEvent.data` themselves. */
export const EVENT_DATA_SCHEMAS = {
  SYNC_CANVAS: syncCanvasDataSchema,
  EXECUTION_UPDATE: executionUpdateDataSchema,
  LOG_STREAM: logStreamDataSchema,
  RESET: resetDataSchema,
  SNAPSHOT: snapshotDataSchema,
} as const satisfies Record<EventType, z.ZodType>;

export const flowEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("SYNC_CANVAS"), data: syncCanvasDataSchema }),
  z.object({ type: z.literal("EXECUTION_UPDATE"), data: executionUpdateDataSchema }),
  z.object({ type: z.literal("LOG_STREAM"), data: logStreamDataSchema }),
  z.object({ type: z.literal(RESET), data: resetDataSchema }),
  z.object({ type: z.literal(SNAPSHOT), data: snapshotDataSchema }),
]);
export type FlowEvent = z.infer<typeof flowEventSchema>;
/** An event made from a document change (everything but RESET). */
export type DocEvent = Extract<FlowEvent, { type: DocEventType }>;
export type ResetEvent = Extract<FlowEvent, { type: typeof RESET }>;

/** Parses one SSE message (its `event:` name and `data:` text) into a typed event. */
export function parseFlowEvent(type: string, dataText: string): FlowEvent | undefined {
  let data: unknown;
  try {
    data = JSON.parse(dataText);
  } catch {
    return undefined;
  }
  const result = flowEventSchema.safeParse({ type, data });
  return result.success ? result.data : undefined;
}
