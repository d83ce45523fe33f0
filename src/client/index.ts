/**
 * `flowsync/client`: the typed browser and Node client of flowsync.
 *
 *   const store = createFlowStore();
 *   const sub = subscribeFlow("https://flowsync.example", "flow-1", { onState: console.log }, { store });
 *   store.subscribe((s) => render(s.nodes, s.edges, s.execution));
 *
 * It imports the event schemas (zod) and nothing else: no Node built-ins, no server code.
 */
export { subscribeFlow } from "./subscribe";
export type { ConnectionState, EventMeta, FlowHandlers, FlowSubscription, SnapshotMeta, StateInfo, SubscribeOptions, SubscriptionStats } from "./subscribe";
export { createFlowStore, docId, EMPTY_FLOW_STATE } from "./store";
export type { Doc, FlowState, FlowStore } from "./store";
export { FlowsyncClientError } from "./errors";
export type { ClientErrorReason } from "./errors";
export type { EventSourceConstructor, EventSourceLike, FetchLike } from "./transports";
export { SseParser } from "./sse-parser";
export type { SseMessage } from "./sse-parser";
export {
  DOC_EVENT_TYPES,
  EVENT_DATA_SCHEMAS,
  EVENT_TYPES,
  flowEventSchema,
  parseFlowEvent,
  snapshotDataSchema,
} from "../events/schemas";
export type {
  DocEvent,
  DocEventType,
  EventType,
  ExecutionUpdateData,
  FlowEvent,
  LogStreamData,
  ResetData,
  ResetReason,
  SnapshotData,
  SyncCanvasData,
} from "../events/schemas";
