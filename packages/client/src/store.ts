/**
 * A flow's state as an app binds to it: `{nodes, edges, execution}`, kept up to
 * date by applying a snapshot and then events.
 *
 * Rules (the same an app would write by hand, in one place):
 * - documents are keyed by the event's `id` (the `_id` as a string);
 * - insert / replace → the event's document;
 * - update with a document → that document (it is the whole document as looked
 *   up when the change was read: newer than the change, never older);
 * - update with `doc: null` (deleted by the time the change was read) → keep
 *   what we have: the delete follows;
 * - delete → removed.
 * - `execution` is the newest execution by `_id` (as the snapshot picks it:
 *   ObjectIds grow with time); `executions` holds every one seen.
 *
 * The state is immutable: every change makes a new state object (and a new
 * `nodes`/`edges`/`executions` object for the part that changed), so React's
 * `useSyncExternalStore`, Angular signals and `===` change detection all work.
 */
import type { Doc, DocEvent, SnapshotData } from "./wire.js";

export type { Doc };

export interface FlowState {
  readonly flowId: string | undefined;
  readonly nodes: Readonly<Record<string, Doc>>;
  readonly edges: Readonly<Record<string, Doc>>;
  /** The newest execution of the flow (greatest `_id`), or null. */
  readonly execution: Doc | null;
  readonly executions: Readonly<Record<string, Doc>>;
  /** The cursor of the last snapshot or event applied. */
  readonly cursor: string | undefined;
}

export interface FlowStore {
  /** The current state (a new object after every change). */
  getState(): FlowState;
  /** Calls `listener` after every change; returns the unsubscribe. */
  subscribe(listener: (state: FlowState) => void): () => void;
  /** Replaces everything with a snapshot. */
  load(snapshot: SnapshotData): void;
  /** Applies one document event; LOG_STREAM and unknown canvas entities leave the state as it is. */
  apply(event: DocEvent, cursor?: string): void;
}

export const EMPTY_FLOW_STATE: FlowState = Object.freeze({
  flowId: undefined,
  nodes: Object.freeze({}),
  edges: Object.freeze({}),
  execution: null,
  executions: Object.freeze({}),
  cursor: undefined,
});

/** A document's `_id` as events name it (`id`): a string as is, anything else as its JSON text. */
export function docId(doc: Doc): string {
  const id = doc._id;
  return typeof id === "string" ? id : JSON.stringify(id);
}

export function createFlowStore(initial: FlowState = EMPTY_FLOW_STATE): FlowStore {
  let state = initial;
  const listeners = new Set<(state: FlowState) => void>();

  const set = (next: FlowState) => {
    state = next;
    for (const listener of [...listeners]) listener(state);
  };

  // Arrow functions: `store.getState` and `store.subscribe` can be passed around unbound.
  const getState = () => state;

  const subscribe = (listener: (state: FlowState) => void) => {
    listeners.add(listener);
    return () => void listeners.delete(listener);
  };

  const load = (snapshot: SnapshotData) => {
    const executions = byId(snapshot.executions);
    set({
      flowId: snapshot.flowId,
      nodes: byId(snapshot.canvas.node ?? []),
      edges: byId(snapshot.canvas.edge ?? []),
      executions,
      execution: newest(executions),
      cursor: snapshot.cursor,
    });
  };

  const apply = (event: DocEvent, cursor?: string) => {
    const { data } = event;
    const next: { -readonly [K in keyof FlowState]: FlowState[K] } = { ...state, flowId: data.flowId, cursor: cursor ?? state.cursor };
    if (event.type === "SYNC_CANVAS") {
      const key = event.data.entity === "node" ? "nodes" : event.data.entity === "edge" ? "edges" : undefined;
      if (key) next[key] = applyTo(state[key], data.op, data.id, data.doc);
    } else if (event.type === "EXECUTION_UPDATE") {
      next.executions = applyTo(state.executions, data.op, data.id, data.doc);
      next.execution = newest(next.executions);
    }
    set(next);
  };

  return { getState, subscribe, load, apply };
}

function byId(docs: readonly Doc[]): Record<string, Doc> {
  const out: Record<string, Doc> = {};
  for (const doc of docs) out[docId(doc)] = doc;
  return out;
}

function applyTo(map: Readonly<Record<string, Doc>>, op: string, id: string, doc: Doc | null): Readonly<Record<string, Doc>> {
  if (op === "delete") {
    if (!Object.hasOwn(map, id)) return map;
    const { [id]: _gone, ...rest } = map;
    return rest;
  }
  // An update whose document was already deleted when the change was read: the delete follows.
  if (doc === null) return map;
  return { ...map, [id]: doc };
}

function newest(executions: Readonly<Record<string, Doc>>): Doc | null {
  let bestId: string | undefined;
  for (const id of Object.keys(executions)) if (bestId === undefined || id > bestId) bestId = id;
  return bestId === undefined ? null : (executions[bestId] ?? null);
}
