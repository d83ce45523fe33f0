/**
 * `flowsync-client`: the typed browser and Node client of flowsync.
 *
 *   const store = createFlowStore();
 *   const sub = subscribeFlow("https://flowsync.example", "flow-1", { onState: console.log }, { store });
 *   store.subscribe((s) => render(s.nodes, s.edges, s.execution));
 *
 * No dependencies, no Node built-ins, no server code. React and RxJS bindings:
 * `flowsync-client/react`, `flowsync-client/rxjs`.
 */
export { subscribeFlow } from "./subscribe.js";
export type {
  ConnectionState,
  EventMeta,
  FlowHandlers,
  FlowOptions,
  FlowSubscription,
  SnapshotMeta,
  StateInfo,
  SubscribeOptions,
  SubscriptionStats,
} from "./subscribe.js";
export { createFlowStore, docId, EMPTY_FLOW_STATE } from "./store.js";
export type { Doc, FlowState, FlowStore, FlowStoreOptions, LogEntry, OptimisticHandle } from "./store.js";
export { FlowsyncClientError } from "./errors.js";
export type { ClientErrorReason } from "./errors.js";
export type { EventSourceConstructor, EventSourceLike, FetchLike } from "./transports.js";
export { SseParser } from "./sse-parser.js";
export type { SseMessage } from "./sse-parser.js";
export {
  CLUSTER_TIME_PATTERN,
  DOC_EVENT_TYPES,
  EVENT_TYPES,
  FLOW_ID_MAX_LENGTH,
  isEventData,
  isSnapshotData,
  isValidFlowId,
  OPERATIONS,
  parseFlowEvent,
  PRESENCE,
  RESET_REASONS,
} from "./wire.js";
export type {
  Changes,
  DocChange,
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
} from "./wire.js";
