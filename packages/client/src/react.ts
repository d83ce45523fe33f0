/**
 * `flowsync-client/react`: one flow's state in a component.
 *
 *   const { nodes, edges, status, error } = useFlow("flow-1", { baseUrl: "https://flowsync.example" });
 *
 * - Through `useSyncExternalStore`: the state object is immutable, so React
 *   re-renders exactly when something changed.
 * - Components on the same flow (same baseUrl, flowId and options) share one
 *   connection, counted by reference: the first subscriber opens it, the last
 *   one to leave closes it. The close waits a tick, so StrictMode's
 *   mount → unmount → mount opens one connection, not two.
 * - SSR-safe: nothing connects during render or on the server (the server
 *   snapshot is the empty state with status `connecting`).
 *
 * Sharing goes through the nearest `<FlowsyncProvider registry={…}>`; without
 * one, through a registry made when this module loads (one per page). Give each
 * server request or test its own with `createFlowRegistry()`.
 */
import { createContext, createElement, useCallback, useContext, useRef, useSyncExternalStore, type ReactNode } from "react";
import { createFlowStore, EMPTY_FLOW_STATE, type FlowState, type FlowStore } from "./store.js";
import { subscribeFlow, type FlowOptions, type FlowSubscription } from "./subscribe.js";

export type { FlowOptions };

interface Entry {
  readonly store: FlowStore;
  refs: number;
  subscription: FlowSubscription | undefined;
  closing: ReturnType<typeof setTimeout> | undefined;
}

export interface FlowRegistry {
  /** The shared store for this flow and options (created on first use, connected only while acquired). */
  store(flowId: string, options: FlowOptions): FlowStore;
  /** Connects (first caller) and returns the release; the last release closes the connection. */
  acquire(flowId: string, options: FlowOptions): () => void;
}

// Options that make a different connection; functions (getToken, fetch) are taken from the first caller.
const keyOf = (flowId: string, o: FlowOptions) =>
  JSON.stringify([o.baseUrl, flowId, o.basePath, o.logs, o.types, o.presence, o.transport, o.withCredentials, o.lastEventId, o.headers]);

export function createFlowRegistry(): FlowRegistry {
  const entries = new Map<string, Entry>();
  const entry = (flowId: string, options: FlowOptions) => {
    const key = keyOf(flowId, options);
    let e = entries.get(key);
    if (!e) entries.set(key, (e = { store: createFlowStore(), refs: 0, subscription: undefined, closing: undefined }));
    return { key, e };
  };
  return {
    store: (flowId, options) => entry(flowId, options).e.store,
    acquire(flowId, options) {
      const { key, e } = entry(flowId, options);
      e.refs++;
      if (e.closing !== undefined) clearTimeout(e.closing);
      e.closing = undefined;
      e.subscription ??= subscribeFlow(options.baseUrl, flowId, {}, { ...options, store: e.store });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        if (--e.refs > 0) return;
        e.closing = setTimeout(() => {
          e.subscription?.close();
          entries.delete(key);
        }, 0);
      };
    },
  };
}

const RegistryContext = createContext<FlowRegistry>(createFlowRegistry());

export function FlowsyncProvider({ registry, children }: { registry: FlowRegistry; children?: ReactNode }) {
  return createElement(RegistryContext.Provider, { value: registry }, children);
}

const serverSnapshot = () => EMPTY_FLOW_STATE;

/** The flow's state: `{ nodes, edges, entities, execution, executions, logs, presence, status, error, … }`. */
export function useFlow(flowId: string, options: FlowOptions): FlowState {
  const registry = useContext(RegistryContext);
  const latest = useRef(options);
  latest.current = options;
  const key = keyOf(flowId, options);
  const subscribe = useCallback(
    (onChange: () => void) => {
      const release = registry.acquire(flowId, latest.current);
      const off = registry.store(flowId, latest.current).subscribe(onChange);
      return () => {
        off();
        release();
      };
    },
    // The key stands for the options (a hooks linter would ask for them as dependencies).
    [registry, flowId, key],
  );
  const getSnapshot = () => registry.store(flowId, latest.current).getState();
  return useSyncExternalStore(subscribe, getSnapshot, serverSnapshot);
}

/** The shared store behind `useFlow` (for `optimistic(…)`); the connection follows `useFlow`'s subscribers. */
export function useFlowStore(flowId: string, options: FlowOptions): FlowStore {
  return useContext(RegistryContext).store(flowId, options);
}
