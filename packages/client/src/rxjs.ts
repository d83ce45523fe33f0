/**
 * `flowsync-client/rxjs`: one flow as Observables (Angular: `toSignal(flow$(…))`).
 *
 * - `flow$(flowId, options)`: the flow's state object (the store's, with
 *   `status` and `error`), a new immutable object per change, the latest one
 *   replayed to late subscribers.
 * - `events$(flowId, options)`: every event as it arrives (document events,
 *   RESET, and the snapshots the client fetched or was sent, as SNAPSHOT).
 *
 * Both are multicast with a reference count: one connection however many
 * subscribers; the last unsubscribe closes it. They error only when the
 * connection cannot recover (a 403, a 4xx a retry cannot fix): retries show in
 * `status` / `error` instead.
 */
import { Observable, ReplaySubject, share } from "rxjs";
import { createFlowStore, type FlowState, type FlowStoreOptions } from "./store.js";
import { subscribeFlow, type FlowOptions } from "./subscribe.js";
import type { FlowEvent } from "./wire.js";

export type { FlowOptions };

export function flow$(flowId: string, options: FlowOptions & { storeOptions?: FlowStoreOptions }): Observable<FlowState> {
  return new Observable<FlowState>((subscriber) => {
    const store = createFlowStore(options.storeOptions);
    const off = store.subscribe((state) => {
      subscriber.next(state);
      if (state.status === "closed" && state.error) subscriber.error(state.error);
    });
    subscriber.next(store.getState());
    const sub = subscribeFlow(options.baseUrl, flowId, {}, { ...options, store });
    return () => {
      off();
      sub.close();
    };
  }).pipe(share({ connector: () => new ReplaySubject<FlowState>(1), resetOnError: true, resetOnComplete: true, resetOnRefCountZero: true }));
}

export function events$(flowId: string, options: FlowOptions): Observable<FlowEvent> {
  return new Observable<FlowEvent>((subscriber) => {
    const sub = subscribeFlow(
      options.baseUrl,
      flowId,
      {
        onEvent: (event) => subscriber.next(event),
        onReset: (data) => subscriber.next({ type: "RESET", data }),
        onSnapshot: (data) => subscriber.next({ type: "SNAPSHOT", data }),
        onPresence: (data) => subscriber.next({ type: "PRESENCE", data }),
        onState: (state, info) => state === "closed" && info.error && subscriber.error(info.error),
      },
      options,
    );
    return () => sub.close();
  }).pipe(share());
}
