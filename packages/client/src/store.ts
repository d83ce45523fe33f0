/**
 * A flow's state as an app binds to it, kept up to date by applying a snapshot
 * and then events: every canvas entity by kind, every execution and the newest,
 * LOG_STREAM text per (execution, node), the connection's status, and local
 * optimistic changes on top.
 *
 * Rules (the same an app would write by hand, in one place):
 * - documents are keyed by the event's `id` (the `_id` as a string);
 * - insert / replace → the event's document;
 * - update with a document → that document (it is the whole document as looked
 *   up when the change was read: newer than the change, never older);
 * - update with `doc: null` (deleted by the time the change was read) → keep
 *   what we have: the delete follows;
 * - delete → removed.
 * - a replace with `elements` (entities embedded in one flow document) → that kind is
 *   exactly those elements, keyed by their field `key`; snapshot `keys` name the same field.
 * - `entities[kind]` holds every SYNC_CANVAS entity; `nodes` and `edges` are
 *   `entities.node` and `entities.edge`.
 * - `presence` is the users of the last PRESENCE event (the full list, so each
 *   one replaces the last, and the first after a reconnect resets it).
 * - `execution` is the newest execution by `_id` (as the snapshot picks it:
 *   ObjectIds grow with time); `executions` holds every one seen.
 * - `logs[executionId][nodeId]` is the text of that node's LOG_STREAM chunks
 *   (one inserted document per chunk) in arrival order. A chunk is keyed by its
 *   document id, so a replayed one is never appended twice; the text records what
 *   was streamed, so a later update or delete of a chunk leaves it. Only the last
 *   `maxLogChars` characters are kept (`truncated` says text was cut).
 * - `optimistic(entity, id, patch)` shows a local change at once; it goes away
 *   when the server's change for that document arrives, on a new snapshot
 *   (RESET), after `timeoutMs`, or by its handle — whichever comes first.
 *
 * The state is immutable: every change makes a new state object (and new
 * objects only for the parts that changed), so React's `useSyncExternalStore`,
 * Angular signals and `===` change detection all work.
 */
import type { ConnectionState } from "./connection.js";
import { createDedupWindow, type DedupWindow } from "./dedup.js";
import type { Doc, DocEvent, PresenceData, PresenceUser, SnapshotData } from "./wire.js";

export type { Doc };

type ById = Readonly<Record<string, Doc>>;

export interface LogEntry {
  readonly executionId: string;
  readonly nodeId: string;
  /** The chunks' text in order: the last `maxLogChars` characters of it. */
  readonly text: string;
  /** Chunks appended. */
  readonly chunks: number;
  /** True once text was cut from the front to stay within `maxLogChars`. */
  readonly truncated: boolean;
}

export interface FlowState {
  readonly flowId: string | undefined;
  /** Every SYNC_CANVAS entity: `entities[kind][id]`, optimistic changes applied. */
  readonly entities: Readonly<Record<string, ById>>;
  readonly nodes: ById;
  readonly edges: ById;
  /** Who is on the flow (the last PRESENCE event's users, sorted by id), each with its `connections`. */
  readonly presence: readonly PresenceUser[];
  /** The newest execution of the flow (greatest `_id`), or null. */
  readonly execution: Doc | null;
  readonly executions: ById;
  /** LOG_STREAM text: `logs[executionId][nodeId]`. */
  readonly logs: Readonly<Record<string, Readonly<Record<string, LogEntry>>>>;
  /** The cursor of the last snapshot or event applied. */
  readonly cursor: string | undefined;
  /** The connection's state, when a subscription keeps this store (`subscribeFlow(…, { store })`). */
  readonly status: ConnectionState;
  /** Why the connection is retrying (status not `open`) or closed; cleared once it is open again. */
  readonly error: Error | undefined;
}

export interface OptimisticHandle {
  /** True until the overlay is dropped (by the server's change, a snapshot, the timeout or `drop()`). */
  readonly active: boolean;
  drop(): void;
}

export interface FlowStoreOptions {
  /** Retained LOG_STREAM text per (execution, node), in characters. Default 65 536. */
  maxLogChars?: number | undefined;
  /** Where a LOG_STREAM document says which execution and node it belongs to. Default `executionId`, `nodeId`. */
  logKey?: ((doc: Doc) => { executionId: string; nodeId: string }) | undefined;
  /** A LOG_STREAM document's text. Default its `chunk`, `text` or `content` field, whichever is a string. */
  logText?: ((doc: Doc) => string) | undefined;
  /** How long an optimistic change shows without the server's confirmation. Default 10 000 ms. */
  optimisticTimeoutMs?: number | undefined;
}

export interface FlowStore {
  /** The current state (a new object after every change). */
  getState(): FlowState;
  /** Calls `listener` after every change; returns the unsubscribe. */
  subscribe(listener: (state: FlowState) => void): () => void;
  /** Replaces everything with a snapshot (optimistic changes are dropped). */
  load(snapshot: SnapshotData): void;
  /** Applies one document event. */
  apply(event: DocEvent, cursor?: string): void;
  /** Replaces the presence list with a PRESENCE event's. */
  setPresence(data: PresenceData): void;
  /** Records the connection's state (subscribeFlow does this for the store it keeps). */
  setStatus(status: ConnectionState, error?: Error): void;
  /**
   * Shows `patch` merged over the document at once (`null`: shows it deleted);
   * for a document that does not exist yet, the patch is the document.
   */
  optimistic(entity: string, id: string, patch: Doc | null, options?: { timeoutMs?: number }): OptimisticHandle;
}

const EMPTY: ById = Object.freeze({});

export const EMPTY_FLOW_STATE: FlowState = Object.freeze({
  flowId: undefined,
  entities: EMPTY,
  nodes: EMPTY,
  edges: EMPTY,
  presence: Object.freeze([]),
  execution: null,
  executions: EMPTY,
  logs: EMPTY,
  cursor: undefined,
  status: "connecting",
  error: undefined,
}) as FlowState;

/** A document's `_id` (or `key` field) as events name it (`id`): a string as is, anything else as its JSON text. */
export function docId(doc: Doc, key = "_id"): string {
  const id = doc[key];
  return typeof id === "string" ? id : JSON.stringify(id);
}

const defaultLogKey = (doc: Doc) => ({ executionId: idText(doc.executionId), nodeId: idText(doc.nodeId) });
const defaultLogText = (doc: Doc) => {
  for (const field of ["chunk", "text", "content"]) if (typeof doc[field] === "string") return doc[field] as string;
  return "";
};
const idText = (v: unknown) => (v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v));

interface Overlay {
  readonly patch: Doc | null;
  readonly timer: ReturnType<typeof setTimeout>;
  readonly handle: { active: boolean };
}

export function createFlowStore(options: FlowStoreOptions = {}): FlowStore {
  const maxLogChars = Math.max(1, options.maxLogChars ?? 65_536);
  const logKey = options.logKey ?? defaultLogKey;
  const logText = options.logText ?? defaultLogText;
  const optimisticTimeoutMs = options.optimisticTimeoutMs ?? 10_000;

  let state = EMPTY_FLOW_STATE;
  // What the server says, per kind; `state.entities` is this with the overlays applied.
  let server: Record<string, ById> = {};
  // Local changes by entity kind, then id.
  const overlays = new Map<string, Map<string, Overlay>>();
  // The ids of the log chunks appended.
  let logSeen: DedupWindow = createDedupWindow(100_000);
  const listeners = new Set<(state: FlowState) => void>();

  const set = (next: FlowState) => {
    state = next;
    for (const listener of [...listeners]) listener(state);
  };

  const withEntities = (base: FlowState, entities: Record<string, ById>): FlowState => ({
    ...base,
    entities,
    nodes: entities.node ?? EMPTY,
    edges: entities.edge ?? EMPTY,
  });

  const visible = (kind: string): ById | undefined => {
    const base = server[kind];
    const mine = overlays.get(kind);
    if (!mine || mine.size === 0) return base;
    const out: Record<string, Doc> = { ...base };
    for (const [id, { patch }] of mine) {
      if (patch === null) delete out[id];
      else out[id] = { ...(base?.[id] ?? { _id: id }), ...patch };
    }
    return out;
  };

  /** The state's entities with `kind` recomputed (the other kinds keep their objects). */
  const entitiesWith = (kind: string): Record<string, ById> => {
    const out: Record<string, ById> = { ...state.entities };
    const v = visible(kind);
    if (v === undefined) delete out[kind];
    else out[kind] = v;
    return out;
  };

  const dropOverlay = (kind: string, id: string): boolean => {
    const overlay = overlays.get(kind)?.get(id);
    if (!overlay) return false;
    clearTimeout(overlay.timer);
    overlay.handle.active = false;
    overlays.get(kind)!.delete(id);
    return true;
  };

  const dropAllOverlays = () => {
    for (const [kind, byId] of overlays) for (const id of [...byId.keys()]) dropOverlay(kind, id);
  };

  const getState = () => state;

  const subscribe = (listener: (state: FlowState) => void) => {
    listeners.add(listener);
    return () => void listeners.delete(listener);
  };

  const load = (snapshot: SnapshotData) => {
    dropAllOverlays();
    server = {};
    for (const [kind, docs] of Object.entries(snapshot.canvas)) server[kind] = byId(docs, snapshot.keys?.[kind]);
    const executions = byId(snapshot.executions);
    logSeen = createDedupWindow(100_000);
    let logs: FlowState["logs"] = {};
    for (const doc of snapshot.logs ?? []) logs = withLog(logs, docId(doc), doc);
    set(withEntities({ ...state, flowId: snapshot.flowId, executions, execution: newest(executions), logs, cursor: snapshot.cursor }, { ...server }));
  };

  // Chunks are appended once each, by document id (a replay, or the snapshot's copy, is not appended again);
  // the text is a record of what was streamed, so a later update or delete of a chunk leaves it.
  const withLog = (logs: FlowState["logs"], id: string, doc: Doc): FlowState["logs"] => {
    if (!logSeen.remember(id)) return logs;
    const { executionId, nodeId } = logKey(doc);
    const prev = logs[executionId]?.[nodeId];
    const text = (prev?.text ?? "") + logText(doc);
    const entry: LogEntry = {
      executionId,
      nodeId,
      text: text.slice(-maxLogChars),
      chunks: (prev?.chunks ?? 0) + 1,
      truncated: !!prev?.truncated || text.length > maxLogChars,
    };
    return { ...logs, [executionId]: { ...logs[executionId], [nodeId]: entry } };
  };

  const apply = (event: DocEvent, cursor?: string) => {
    const { data } = event;
    const base: FlowState = { ...state, flowId: data.flowId, cursor: cursor ?? state.cursor };
    if (event.type === "SYNC_CANVAS") {
      const kind = event.data.entity;
      const before = server[kind] ?? EMPTY;
      const { elements, key } = event.data;
      const after = elements ? byId(elements, key) : applyTo(before, data.op, data.id, data.doc);
      if (after !== before) server = { ...server, [kind]: after };
      // The server's word on this document (or, for a replace-all, on every element of the kind) replaces the local guess.
      let dropped = false;
      for (const id of elements ? [...(overlays.get(kind)?.keys() ?? [])] : [data.id]) dropped = dropOverlay(kind, id) || dropped;
      if (after === before && !dropped) return set(base);
      state = base;
      return set(withEntities(base, entitiesWith(kind)));
    }
    if (event.type === "EXECUTION_UPDATE") {
      const executions = applyTo(state.executions, data.op, data.id, data.doc);
      return set({ ...base, executions, execution: newest(executions) });
    }
    set(data.op === "insert" ? { ...base, logs: withLog(state.logs, data.id, data.doc) } : base);
  };

  const setStatus = (status: ConnectionState, error?: Error) => {
    const nextError = status === "open" ? undefined : (error ?? (status === state.status ? state.error : undefined));
    if (status === state.status && nextError === state.error) return;
    set({ ...state, status, error: nextError });
  };

  const optimistic = (entity: string, id: string, patch: Doc | null, opts: { timeoutMs?: number } = {}): OptimisticHandle => {
    dropOverlay(entity, id);
    const handle = { active: true };
    const timer = setTimeout(() => drop(), opts.timeoutMs ?? optimisticTimeoutMs);
    const overlay: Overlay = { patch, timer, handle };
    let byKind = overlays.get(entity);
    if (!byKind) overlays.set(entity, (byKind = new Map()));
    byKind.set(id, overlay);
    set(withEntities(state, entitiesWith(entity)));
    const drop = () => {
      if (overlays.get(entity)?.get(id) !== overlay) return;
      dropOverlay(entity, id);
      set(withEntities(state, entitiesWith(entity)));
    };
    return {
      get active() {
        return handle.active;
      },
      drop,
    };
  };

  const setPresence = (data: PresenceData) => set({ ...state, flowId: data.flowId, presence: data.users });

  return { getState, subscribe, load, apply, setPresence, setStatus, optimistic };
}

function byId(docs: readonly Doc[], key?: string): Record<string, Doc> {
  const out: Record<string, Doc> = {};
  for (const doc of docs) out[docId(doc, key)] = doc;
  return out;
}

function applyTo(map: ById, op: string, id: string, doc: Doc | null): ById {
  if (op === "delete") {
    if (!Object.hasOwn(map, id)) return map;
    const { [id]: _gone, ...rest } = map;
    return rest;
  }
  // An update whose document was already deleted when the change was read: the delete follows.
  if (doc === null) return map;
  return { ...map, [id]: doc };
}

function newest(executions: ById): Doc | null {
  let bestId: string | undefined;
  for (const id of Object.keys(executions)) if (bestId === undefined || id > bestId) bestId = id;
  return bestId === undefined ? null : (executions[bestId] ?? null);
}
