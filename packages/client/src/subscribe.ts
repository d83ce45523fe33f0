/**
 * `subscribeFlow`: one flow's events, typed, in order, each once, across
 * disconnects and RESETs.
 *
 *   start ─▶ snapshot (GET …/snapshot, unless a cursor or snapshot is given)
 *         ─▶ subscribe from its cursor ─▶ events ─▶ (dropped) ─▶ resume with the last id
 *                                              └─▶ RESET ─▶ snapshot again ─▶ subscribe from its cursor
 *
 * This module is the driver: it turns options into a transport, performs the
 * effects of the connection state machine (connection.ts: what happens when),
 * and dispatches messages to the store and the handlers.
 *
 * - Every message is checked against the wire contract (wire.ts, hand-written guards);
 *   one that fails is counted and reported through `onError`, never applied.
 * - Document events are deduplicated by cursor (dedup.ts: a bounded window of recent ids).
 *   The server sends nothing twice; this is the client's own guarantee.
 * - Reconnects: EventSource resumes by itself after the server ends a stream; when
 *   it gives up, and always with the fetch reader, the client reconnects with the
 *   last id after the server's `retry:` delay, then with exponential backoff and
 *   equal jitter (backoff.ts) up to `retry.maxMs`.
 * - Errors are `FlowsyncClientError`s with a `reason` (errors.ts).
 *
 * Browser-safe and dependency-free.
 */
import {
  isSnapshotData,
  isValidFlowId,
  parseFlowEvent,
  type PRESENCE,
  type DocEvent,
  type DocEventType,
  type ExecutionUpdateData,
  type LogStreamData,
  type PresenceData,
  type ResetData,
  type SnapshotData,
  type SyncCanvasData,
} from "./wire.js";
import { backoffDelay, equalJitter, type Jitter } from "./backoff.js";
import { initialMachine, transition, type ConnectionEvent, type ConnectionState, type Effect, type SnapshotReason } from "./connection.js";
import { createDedupWindow } from "./dedup.js";
import { asError, FlowsyncClientError, responseError } from "./errors.js";
import type { FlowStore } from "./store.js";
import { openEventSource, openFetchStream, type EventSourceConstructor, type FetchLike, type Transport, type TransportEvents } from "./transports.js";

export type { ConnectionState } from "./connection.js";

export interface StateInfo {
  /** What caused this state, when it was an error. */
  error?: Error | undefined;
  /** The cursor the client resumes from. */
  lastEventId?: string | undefined;
}

export interface EventMeta {
  /** The event's cursor (its SSE `id:`). */
  cursor: string | undefined;
}

export interface SnapshotMeta {
  /** `initial`: the first paint; `reset`: after a RESET; `server`: a SNAPSHOT event in the stream. */
  reason: "initial" | "reset" | "server";
}

export interface FlowHandlers {
  onCanvas?(data: SyncCanvasData, meta: EventMeta): void;
  onExecution?(data: ExecutionUpdateData, meta: EventMeta): void;
  onLog?(data: LogStreamData, meta: EventMeta): void;
  /** Every document event, whatever its type, after the typed handler (e.g. an event log). */
  onEvent?(event: DocEvent, meta: EventMeta): void;
  /** The server cannot resume this client; a snapshot follows (onSnapshot, reason "reset"). */
  onReset?(data: ResetData): void;
  /** Who is on the flow now (a PRESENCE event: the full list, replace yours with it). */
  onPresence?(data: PresenceData): void;
  /** A full state: replace yours with it. */
  onSnapshot?(snapshot: SnapshotData, meta: SnapshotMeta): void;
  onState?(state: ConnectionState, info: StateInfo): void;
  /** Invalid events, failed snapshot fetches, handler exceptions. Without it they go to `reportError`/console. */
  onError?(error: Error): void;
}

export interface SubscribeOptions {
  /** Route prefix of the service. Default `/api/creative-flowboard`. */
  basePath?: string | undefined;
  /** Resume after this cursor; no snapshot is fetched first. */
  lastEventId?: string | undefined;
  /**
   * The first state: a snapshot you already have (the client starts from its cursor),
   * `true` to fetch one first (the default without `lastEventId`), `false` for live events only.
   */
  snapshot?: SnapshotData | boolean | undefined;
  /** Fetch snapshots with log chunks (`?logs=1`). */
  logs?: boolean | undefined;
  /** Only these event types (`?types=`; add `PRESENCE` to keep presence); RESET and SNAPSHOT always arrive. */
  types?: readonly (DocEventType | typeof PRESENCE)[] | undefined;
  /** A store to keep up to date (`createFlowStore()`): snapshots are loaded into it, events applied. */
  store?: FlowStore | undefined;
  /** Extra request headers (fetch reader only; setting them selects it). */
  headers?: Record<string, string> | undefined;
  /** Called before every request; a token is sent as `Authorization: Bearer <token>` (selects the fetch reader). */
  getToken?: (() => string | null | undefined | Promise<string | null | undefined>) | undefined;
  /** Send cookies cross-origin (`withCredentials` / `credentials: "include"`). */
  withCredentials?: boolean | undefined;
  /** `auto` (default): EventSource when the platform has it and no headers are needed, else fetch. */
  transport?: "auto" | "eventsource" | "fetch" | undefined;
  /** Reconnect delays: the first is the server's `retry:` hint (or `initialMs`), then doubling up to `maxMs`. */
  retry?: { initialMs?: number; maxMs?: number } | undefined;
  /** How many recent event ids to remember for deduplication. Default 10 000. */
  dedupWindow?: number | undefined;
  /** `false`: watch the flow without being listed in its presence (`?presence=0`; an inspector, a bot). */
  presence?: boolean | undefined;
  /** Injected for tests or other runtimes. */
  fetch?: FetchLike | undefined;
  EventSource?: EventSourceConstructor | undefined;
}

/** The options of the bindings (`useFlow`, `flow$`): where the service is, and `subscribeFlow`'s options. */
export interface FlowOptions extends Omit<SubscribeOptions, "store"> {
  /** The service's origin (and path prefix, if any), e.g. `https://flowsync.example`. */
  baseUrl: string;
}

export interface SubscriptionStats {
  /** Document events delivered to handlers. */
  events: number;
  /** Document events dropped because their cursor was seen already. */
  duplicates: number;
  /** Messages that failed the schemas. */
  invalid: number;
  resets: number;
  snapshots: number;
  /** Connections opened after the first (by this client or by EventSource itself). */
  reconnects: number;
}

export interface FlowSubscription {
  readonly flowId: string;
  readonly state: ConnectionState;
  /** The cursor the client would resume from now. */
  readonly lastEventId: string | undefined;
  readonly transport: "eventsource" | "fetch";
  readonly stats: Readonly<SubscriptionStats>;
  /** Drops the connection and resumes with the last id after `delayMs` (default 0): resume, on demand. */
  reconnect(delayMs?: number): void;
  /** Stops for good (idempotent). */
  close(): void;
}

const DEFAULT_BASE_PATH = "/api/creative-flowboard";
const DEFAULT_RETRY_MS = 1000;
const DEFAULT_MAX_RETRY_MS = 30_000;

// The first retry waits exactly what the server asked for (its `retry:`); later ones spread out.
const clientJitter = (random: () => number): Jitter => {
  const equal = equalJitter(random);
  return (cap, attempt) => (attempt === 0 ? cap : equal(cap, attempt));
};

export function subscribeFlow(baseUrl: string, flowId: string, handlers: FlowHandlers = {}, options: SubscribeOptions = {}): FlowSubscription {
  const usage = (message: string) => new FlowsyncClientError(`flowsync: ${message}`, { reason: "usage" });
  if (!isValidFlowId(flowId)) throw usage(`invalid flowId ${JSON.stringify(flowId)}`);
  const root = `${baseUrl.replace(/\/+$/, "")}${options.basePath ?? DEFAULT_BASE_PATH}`;
  const needsHeaders = options.headers !== undefined || options.getToken !== undefined;
  const ES = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
  const kind = options.transport === "fetch" || options.transport === "eventsource" ? options.transport : ES && !needsHeaders ? "eventsource" : "fetch";
  if (kind === "eventsource" && (!ES || needsHeaders)) throw usage(`EventSource ${ES ? "cannot send headers" : "missing"}: use transport 'fetch'`);
  const fetchFn: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const store = options.store;
  const maxRetryMs = options.retry?.maxMs ?? DEFAULT_MAX_RETRY_MS;
  const jitter = clientJitter(Math.random);
  const dedup = createDedupWindow(options.dedupWindow ?? 10_000);
  // What every stream request carries, each part as "&k=v" (the first "&" becomes "?"; the cursor is added per request).
  const query = (options.types?.length ? `&types=${options.types.join(",")}` : "") + (options.presence === false ? "&presence=0" : "");
  const credentials = options.withCredentials ?? false;

  const stats: SubscriptionStats = { events: 0, duplicates: 0, invalid: 0, resets: 0, snapshots: 0, reconnects: 0 };
  let machine = initialMachine(options.lastEventId, options.retry?.initialMs ?? DEFAULT_RETRY_MS);
  // The one thing in flight (stream, snapshot fetch or timer); its callbacks count only while `generation` is theirs.
  let current: Transport | undefined;
  let generation = 0;

  const report = (error: Error) => {
    if (handlers.onError) {
      try {
        handlers.onError(error);
        return;
      } catch (err) {
        error = asError(err);
      }
    }
    ((globalThis as { reportError?: (e: unknown) => void }).reportError ?? console.error)(error);
  };

  // Handlers are the app's code: one that throws must not break the stream.
  const call = <A extends unknown[]>(fn: ((...args: A) => void) | undefined, ...args: A) => {
    if (!fn) return;
    try {
      fn(...args);
    } catch (err) {
      report(asError(err));
    }
  };

  const send = (event: ConnectionEvent) => {
    const step = transition(machine, event);
    machine = step.machine;
    stats.reconnects = Math.max(0, machine.opens - 1);
    for (const effect of step.effects) perform(effect);
  };

  /** Wraps callbacks of what is started now: they go quiet once something else starts. */
  const startNew = () => {
    current?.close();
    current = undefined;
    const gen = ++generation;
    return (event: ConnectionEvent) => {
      if (gen === generation) send(event);
    };
  };

  const requestHeaders = async (): Promise<Record<string, string>> => {
    const headers: Record<string, string> = { ...options.headers };
    let token: string | null | undefined;
    try {
      token = await options.getToken?.();
    } catch (err) {
      throw new FlowsyncClientError(`getToken failed: ${asError(err).message}`, { reason: "token", cause: err });
    }
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  };

  const applySnapshot = (snapshot: SnapshotData, reason: SnapshotMeta["reason"]) => {
    stats.snapshots++;
    store?.load(snapshot);
    call(handlers.onSnapshot, snapshot, { reason });
  };

  const onMessage = (feed: (e: ConnectionEvent) => void, type: string, data: string, id: string | undefined) => {
    if (id !== undefined) feed({ type: "cursor", id });
    const event = parseFlowEvent(type, data);
    if (!event) {
      stats.invalid++;
      report(new FlowsyncClientError(`flowsync: invalid ${type} event skipped (cursor ${id})`, { reason: "invalid-event" }));
      return;
    }
    if (event.type === "RESET") {
      stats.resets++;
      call(handlers.onReset, event.data);
      feed({ type: "reset" });
      return;
    }
    if (event.type === "SNAPSHOT") {
      applySnapshot(event.data, "server");
      feed({ type: "snapshot", cursor: event.data.cursor });
      return;
    }
    if (event.type === "PRESENCE") {
      store?.setPresence(event.data);
      call(handlers.onPresence, event.data);
      return;
    }
    if (id !== undefined && !dedup.remember(id)) {
      stats.duplicates++;
      return;
    }
    stats.events++;
    const meta: EventMeta = { cursor: id };
    if (store) {
      try {
        store.apply(event, id);
      } catch (err) {
        report(asError(err));
      }
    }
    if (event.type === "SYNC_CANVAS") call(handlers.onCanvas, event.data, meta);
    else if (event.type === "EXECUTION_UPDATE") call(handlers.onExecution, event.data, meta);
    else call(handlers.onLog, event.data, meta);
    call(handlers.onEvent, event, meta);
  };

  const openStream = (from: string | undefined) => {
    const feed = startNew();
    const on: TransportEvents = {
      open: () => feed({ type: "opened" }),
      message: (type, data, id) => onMessage(feed, type, data, id),
      retryHint: (ms) => feed({ type: "retryHint", ms }),
      interrupted: () => feed({ type: "interrupted" }),
      ended: (error) => feed({ type: "ended", error }),
    };
    const url = `${root}/subscribe/${encodeURIComponent(flowId)}`;
    if (kind === "eventsource") {
      const q = query + (from === undefined ? "" : `&lastEventId=${encodeURIComponent(from)}`);
      current = openEventSource(ES!, url + q.replace("&", "?"), credentials, on);
      return;
    }
    // Headers may come from an async getToken: hold the slot so that close() during the wait is seen.
    let stream: Transport | undefined;
    let closed = false;
    current = {
      close: () => {
        closed = true;
        stream?.close();
      },
    };
    void requestHeaders().then(
      (headers) => {
        if (!closed) stream = openFetchStream(fetchFn, url + query.replace("&", "?"), headers, from, credentials, on);
      },
      (err: Error) => !closed && on.ended(err),
    );
  };

  const fetchSnapshot = (reason: SnapshotReason) => {
    const feed = startNew();
    const abort = new AbortController();
    current = { close: () => abort.abort() };
    void (async () => {
      const res = await fetchFn(`${root}/flows/${encodeURIComponent(flowId)}/snapshot${options.logs ? "?logs=1" : ""}`, {
        headers: { Accept: "application/json", ...(await requestHeaders()) },
        signal: abort.signal,
        ...(credentials ? { credentials: "include" as const } : {}),
      }).catch((err: unknown) => {
        throw err instanceof FlowsyncClientError ? err : new FlowsyncClientError(`snapshot: ${asError(err).message}`, { reason: "network", cause: err });
      });
      if (res.status !== 200) throw await responseError(res, "snapshot");
      const body: unknown = await res.json().catch(() => undefined);
      if (!isSnapshotData(body)) throw new FlowsyncClientError("snapshot: invalid answer", { reason: "invalid-snapshot" });
      return body;
    })().then(
      (snapshot) => {
        if (abort.signal.aborted) return;
        // Applied before the machine subscribes from its cursor.
        applySnapshot(snapshot, reason);
        feed({ type: "fetched", cursor: snapshot.cursor });
      },
      (err: unknown) => !abort.signal.aborted && feed({ type: "fetchFailed", error: asError(err) }),
    );
  };

  const wait = (delayMs: number) => {
    const feed = startNew();
    const timer = setTimeout(() => feed({ type: "timer" }), delayMs);
    current = { close: () => clearTimeout(timer) };
  };

  function perform(effect: Effect): void {
    switch (effect.type) {
      case "fetchSnapshot":
        return fetchSnapshot(effect.reason);
      case "openStream":
        return openStream(effect.from);
      case "wait":
        return wait(effect.delayMs);
      case "backoff":
        return wait(backoffDelay(effect.attempt, { initialMs: effect.initialMs, maxMs: maxRetryMs, jitter }));
      case "stop":
        startNew();
        return;
      case "state":
        store?.setStatus(effect.state, effect.error);
        return call(handlers.onState, effect.state, { error: effect.error, lastEventId: machine.lastEventId });
      case "report":
        return report(effect.error);
    }
  }

  const subscription: FlowSubscription = {
    flowId,
    transport: kind,
    stats,
    get state() {
      return machine.status;
    },
    get lastEventId() {
      return machine.lastEventId;
    },
    reconnect(delayMs = 0) {
      send({ type: "reconnect", delayMs });
    },
    close() {
      send({ type: "close" });
    },
  };
  const first = options.snapshot;
  if (typeof first === "object") {
    applySnapshot(first, "initial");
    send({ type: "snapshot", cursor: first.cursor });
  }
  send({ type: "start", fetchSnapshot: first !== false && typeof first !== "object" && options.lastEventId === undefined });
  return subscription;
}
