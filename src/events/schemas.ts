/**
 * The service's zod schemas of the wire contract. The contract itself (types,
 * constants, field meanings) is defined once, in `flowsync-client/wire`
 * (packages/client/src/wire.ts); the types checks at the bottom fail the build if
 * a schema here and a type there ever disagree. The service uses these schemas
 * where it validates input (filters, the HTTP layer) and in tests as the oracle
 * of the client's hand-written guards.
 */
import { z } from "zod";
import {
  CLUSTER_TIME_PATTERN,
  FLOW_ID_MAX_LENGTH,
  FLOW_ID_PATTERN,
  PRESENCE,
  RESET,
  RESET_REASONS,
  SNAPSHOT,
  type PresenceData as WirePresenceData,
  type FlowEvent as WireFlowEvent,
  type ResetData as WireResetData,
  type SnapshotData as WireSnapshotData,
  type SyncCanvasData as WireSyncCanvasData,
  type ExecutionUpdateData as WireExecutionUpdateData,
  type Changes as WireChanges,
  type EventType,
} from "flowsync-client/wire";

export { DOC_EVENT_TYPES, EVENT_TYPES, FLOW_ID_MAX_LENGTH, isValidFlowId, OPERATIONS, PRESENCE, RESET, RESET_REASONS, SNAPSHOT } from "flowsync-client/wire";
export type {
  Changes,
  ClaimValue,
  DocEvent,
  DocEventType,
  EventType,
  ExecutionUpdateData,
  FlowEvent,
  LogStreamData,
  Operation,
  PresenceData,
  PresenceUser,
  ResetData,
  ResetEvent,
  ResetReason,
  SnapshotData,
  SyncCanvasData,
} from "flowsync-client/wire";

export const flowIdSchema = z.string().min(1).max(FLOW_ID_MAX_LENGTH).regex(FLOW_ID_PATTERN, "must not contain control characters");

export const clusterTimeSchema = z.string().regex(CLUSTER_TIME_PATTERN, 'expected "<seconds>.<increment>"');

/** A document as plain JSON (see events/plain-json.ts for how BSON values are converted). */
export const docSchema = z.record(z.string(), z.unknown());

export const changesSchema = z.object({
  set: z.record(z.string(), z.unknown()),
  unset: z.array(z.string()),
  truncated: z.array(z.object({ field: z.string(), newSize: z.number().int().nonnegative() })).optional(),
});

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

export const syncCanvasDataSchema = docChangeData({ entity: z.string().min(1), elements: z.array(docSchema).optional(), key: z.string().optional() });
export const executionUpdateDataSchema = docChangeData({});
export const logStreamDataSchema = docChangeData({});
export const resetDataSchema = z.object({ flowId: flowIdSchema, reason: z.enum(RESET_REASONS) });

export const snapshotDataSchema = z.object({
  flowId: flowIdSchema,
  cursor: z.string(),
  clusterTime: clusterTimeSchema,
  canvas: z.record(z.string(), z.array(docSchema)),
  keys: z.record(z.string(), z.string()).optional(),
  executions: z.array(docSchema),
  logs: z.array(docSchema).optional(),
});

export const claimValueSchema = z.union([z.string(), z.number(), z.boolean()]);

export const presenceUserSchema = z
  .object({ id: z.string(), name: claimValueSchema.optional(), connections: z.number().int().positive() })
  .catchall(claimValueSchema);

export const presenceDataSchema = z.object({
  flowId: flowIdSchema,
  users: z.array(presenceUserSchema),
  joined: z.array(z.string()),
  left: z.array(z.string()),
});

/** Look-up by SSE `event:` name, for code that validates `MessageEvent.data` itself. */
export const EVENT_DATA_SCHEMAS = {
  SYNC_CANVAS: syncCanvasDataSchema,
  EXECUTION_UPDATE: executionUpdateDataSchema,
  LOG_STREAM: logStreamDataSchema,
  RESET: resetDataSchema,
  SNAPSHOT: snapshotDataSchema,
  PRESENCE: presenceDataSchema,
} as const satisfies Record<EventType, z.ZodType>;

export const flowEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("SYNC_CANVAS"), data: syncCanvasDataSchema }),
  z.object({ type: z.literal("EXECUTION_UPDATE"), data: executionUpdateDataSchema }),
  z.object({ type: z.literal("LOG_STREAM"), data: logStreamDataSchema }),
  z.object({ type: z.literal(RESET), data: resetDataSchema }),
  z.object({ type: z.literal(SNAPSHOT), data: snapshotDataSchema }),
  z.object({ type: z.literal(PRESENCE), data: presenceDataSchema }),
]);

/** Parses one SSE message (its `event:` name and `data:` text) into a typed event, with zod. */
export function parseFlowEvent(type: string, dataText: string): WireFlowEvent | undefined {
  let data: unknown;
  try {
    data = JSON.parse(dataText);
  } catch {
    return undefined;
  }
  const result = flowEventSchema.safeParse({ type, data });
  return result.success ? result.data : undefined;
}

// --- one definition: each schema's type is exactly the contract's ---------
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const agree = <T extends true>(): T => true as T;
agree<Same<z.infer<typeof changesSchema>, WireChanges>>();
agree<Same<z.infer<typeof syncCanvasDataSchema>, WireSyncCanvasData>>();
agree<Same<z.infer<typeof executionUpdateDataSchema>, WireExecutionUpdateData>>();
agree<Same<z.infer<typeof resetDataSchema>, WireResetData>>();
agree<Same<z.infer<typeof snapshotDataSchema>, WireSnapshotData>>();
agree<Same<z.infer<typeof presenceDataSchema>, WirePresenceData>>();
agree<Same<z.infer<typeof flowEventSchema>, WireFlowEvent>>();
