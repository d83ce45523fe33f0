/**
 * `subscribeFlow`: one flow's events, typed, in order, each once, across
 * disconnects and RESETs.
 *
 *   start ─▶ snapshot (GET …/snapshot, unless a cursor or snapshot is given)
 *         ─▶ subscribe from its cursor ─▶ events ─▶ (dropped) ─▶ resume with the last id
 *                                              └─▶ RESET ─▶ snapshot again ─▶ subscribe from its cursor
 *
 * - Every message is checked against the zod schemas (src/events/schemas.ts);
 *   one that fails is counted and reported through `onError`, never applied.
 * - Document events are deduplicated by cursor (a bounded window of recent ids).
 *   The server sends nothing twice; this is the client's own guarantee.
 * - Reconnects: EventSource resumes by itself after the server ends a stream; when
 *   it gives up, and always with the fetch reader, the client reconnects with the
 *   last id after the server's `retry:` delay, then with exponential backoff and
 *   jitter up to `retry.maxMs`.
 *
 * Browser-safe: imports the event schemas and zod only.
 */
import {
  isValidFlowId,
  parseFlowEvent,
  snapshotDataSchema,
  type DocEvent,
  type DocEventType,
  type ExecutionUpdateData,
  type LogStreamData,
  type ResetData,
  type SnapshotData,
  type SyncCanvasData,
} from "../events/schemas";
import type { FlowStore } from "./store";
import {
  FlowsyncClientError,
  isFatalStatus,
  openEventSource,
  openFetchStream,
  responseError,
  type EventSourceConstructor,
  type FetchLike,
  type Transport,
} from "./transports";

/**
 * - `connecting`: first snapshot or first connection under way
 * - `open`: the stream is open (events flow)
 * - `reconnecting`: the connection dropped; resuming with the last id
 * - `resyncing`: a RESET came; refetching the snapshot
 * - `closed`: `close()` was called, or a fatal error (see `error`)
 */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "resyncing" | "closed";

export interface StateInfo {
  /** What caused this state, when it was an error. */
  error?: Error;
  /** The cursor the client resumes from. */
  lastEventId?: string;
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
  /** A full state: replace yours with it. */
  onSnapshot?(snapshot: SnapshotData, meta: SnapshotMeta): void;
  onState?(state: ConnectionState, info: StateInfo): void;
  /** Invalid events, failed snapshot fetches, handler exceptions. Without it they go to `reportError`/console. */
  onError?(error: Error): void;
}

export interface SubscribeOptions {
  /** Route prefix of the service. Default `/api/creative-flowboard`. */
  basePath?: string;
  /** Resume after this cursor; no snapshot is fetched first. */
  lastEventId?: string;
  /**
   * The first state: a snapshot you already have (the client starts from its cursor),
   * `true` to fetch one first (the default without `lastEventId`), `false` for live events only.
   */
  snapshot?: SnapshotData | boolean;
  /** Fetch snapshots with log chunks (`?logs=1`). */
  logs?: boolean;
  /** Only these event types (`?types=`); RESET always arrives. */
  types?: readonly DocEventType[];
  /** A store to keep up to date (`createFlowStore()`): snapshots are loaded into it, events applied. */
  store?: FlowStore;
  /** Extra request headers (fetch reader only; setting them selects it). */
  headers?: Record<string, string>;
  /** Called before every request; a token is sent as `Authorization: Bearer <token>` (selects the fetch reader). */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** Send cookies cross-origin (`withCredentials` / `credentials: "include"`). */
  withCredentials?: boolean;
  /** `auto` (default): EventSource when the platform has it and no headers are needed, else fetch. */
  transport?: "auto" | "eventsource" | "fetch";
  /** Reconnect delays: the first is the server's `retry:` hint (or `initialMs`), then doubling up to `maxMs`. */
  retry?: { initialMs?: number; maxMs?: number };
  /** How many recent event ids to remember for deduplication. Default 10 000. */
  dedupWindow?: number;
  /** Injected for tests or other runtimes. */
  fetch?: FetchLike;
  EventSource?: EventSourceConstructor;
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

export function subscribeFlow(baseUrl: string, flowId: string, handlers: FlowHandlers = {}, options: SubscribeOptions = {}): FlowSubscription {
  if (!isValidFlowId(flowId)) throw new TypeError(`flowsync: invalid flowId ${JSON.stringify(flowId)} (1-256 characters, no control characters)`);
  const root = `${baseUrl.replace(/\/+$/, "")}${options.basePath ?? DEFAULT_BASE_PATH}`;
  const needsHeaders = options.headers !== undefined || options.getToken !== undefined;
  const ES = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
  const kind = options.transport === "fetch" || options.transport === "eventsource" ? options.transport : ES && !needsHeaders ? "eventsource" : "fetch";
  if (kind === "eventsource" && !ES) throw new TypeError("flowsync: transport 'eventsource' asked for, but there is no EventSource here");
  if (kind === "eventsource" && needsHeaders) throw new TypeError("flowsync: EventSource cannot send headers; use transport 'fetch' with headers/getToken");
  const fetchFn: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const store = options.store;
  const maxRetryMs = options.retry?.maxMs ?? DEFAULT_MAX_RETRY_MS;
  const dedupWindow = Math.max(1, options.dedupWindow ?? 10_000);
  const types = options.types?.length ? `types=${options.types.join(",")}` : "";

  const stats: SubscriptionStats = { events: 0, duplicates: 0, invalid: 0, resets: 0, snapshots: 0, reconnects: 0 };
  let state: ConnectionState = "connecting";
  let lastEventId = options.lastEventId;
  let retryMs = options.retry?.initialMs ?? DEFAULT_RETRY_MS;
  let attempt = 0;
  let opens = 0;
  // A RESET came and no snapshot has been applied since: never resume before one is.
  let needsSnapshot = false;
  // Every connection or snapshot fetch gets a generation; callbacks of an older one are ignored.
  let generation = 0;
  let current: Transport | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const seen = new Set<string>();
  const seenOrder: string[] = [];
  let seenHead = 0;

  const report = (error: Error) => {
    if (handlers.onError) {
      try {
        handlers.onError(error);
        return;
      } catch (err) {
        error = err as Error;
      }
    }
    const g = globalThis as { reportError?: (e: unknown) => void };
    if (typeof g.reportError === "function") g.reportError(error);
    else console.error(error);
  };

  // Handlers are the app's code: one that throws must not break the stream.
  const call = <A extends unknown[]>(fn: ((...args: A) => void) | undefined, ...args: A) => {
    if (!fn) return;
    try {
      fn(...args);
    } catch (err) {
      report(err instanceof Error ? err : new Error(String(err)));
    }
  };

  const setState = (next: ConnectionState, error?: Error) => {
    if (next === state && error === undefined) return;
    state = next;
    call(handlers.onState, next, { error, lastEventId });
  };

  const stopCurrent = () => {
    generation++;
    current?.close();
    current = undefined;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };

  const fail = (error: Error) => {
    stopCurrent();
    setState("closed", error);
    report(error);
  };

  const backoff = () => {
    const base = Math.min(maxRetryMs, retryMs * 2 ** Math.min(attempt, 16));
    // The first retry waits what the server asked for; later ones spread out (equal jitter).
    const delay = attempt === 0 ? base : base / 2 + (Math.random() * base) / 2;
    attempt++;
    return delay;
  };

  const later = (delayMs: number, fn: () => void) => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      fn();
    }, delayMs);
  };

  const requestHeaders = async (): Promise<Record<string, string>> => {
    const headers: Record<string, string> = { ...options.headers };
    const token = await options.getToken?.();
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  };

  const remember = (id: string): boolean => {
    if (seen.has(id)) return false;
    seen.add(id);
    if (seenOrder.length < dedupWindow) seenOrder.push(id);
    else {
      seen.delete(seenOrder[seenHead]);
      seenOrder[seenHead] = id;
      seenHead = (seenHead + 1) % dedupWindow;
    }
    return true;
  };

  const applySnapshot = (snapshot: SnapshotData, reason: SnapshotMeta["reason"]) => {
    stats.snapshots++;
    needsSnapshot = false;
    lastEventId = snapshot.cursor;
    store?.load(snapshot);
    call(handlers.onSnapshot, snapshot, { reason });
  };

  const onMessage = (type: string, data: string, id: string | undefined) => {
    if (id !== undefined) lastEventId = id;
    const event = parseFlowEvent(type, data);
    if (!event) {
      stats.invalid++;
      report(new FlowsyncClientError(`flowsync: a ${type} event failed its schema (cursor ${id}); skipped`));
      return;
    }
    if (event.type === "RESET") {
      stats.resets++;
      call(handlers.onReset, event.data);
      resync("reset");
      return;
    }
    if (event.type === "SNAPSHOT") {
      applySnapshot(event.data, "server");
      return;
    }
    if (id !== undefined && !remember(id)) {
      stats.duplicates++;
      return;
    }
    stats.events++;
    const meta: EventMeta = { cursor: id };
    if (store) {
      try {
        store.apply(event, id);
      } catch (err) {
        report(err as Error);
      }
    }
    if (event.type === "SYNC_CANVAS") call(handlers.onCanvas, event.data, meta);
    else if (event.type === "EXECUTION_UPDATE") call(handlers.onExecution, event.data, meta);
    else call(handlers.onLog, event.data, meta);
    call(handlers.onEvent, event, meta);
  };

  const connect = () => {
    if (state === "closed") return;
    if (needsSnapshot) return resync("reset");
    stopCurrent();
    const gen = generation;
    const mine = () => gen === generation;
    const events = {
      open: () => {
        if (!mine()) return;
        attempt = 0;
        // Counted here, so that EventSource's own reconnects count too.
        if (opens++ > 0) stats.reconnects++;
        setState("open");
      },
      message: (type: string, data: string, id: string | undefined) => {
        if (mine()) onMessage(type, data, id);
      },
      retryHint: (ms: number) => {
        if (mine()) retryMs = ms;
      },
      interrupted: () => {
        if (mine()) setState("reconnecting");
      },
      ended: (error: Error | undefined, fatal: boolean) => {
        if (!mine()) return;
        current = undefined;
        if (fatal) return fail(error ?? new FlowsyncClientError("subscribe failed"));
        setState("reconnecting", error);
        later(backoff(), connect);
      },
    };
    if (kind === "eventsource") {
      const query = [types, lastEventId === undefined ? "" : `lastEventId=${encodeURIComponent(lastEventId)}`].filter(Boolean).join("&");
      current = openEventSource(ES!, `${root}/subscribe/${encodeURIComponent(flowId)}${query ? `?${query}` : ""}`, options.withCredentials ?? false, events);
      return;
    }
    // Headers may come from an async getToken: hold the slot so that close() during the wait is seen.
    const from = lastEventId;
    current = { close: () => {} };
    void requestHeaders().then(
      (headers) => {
        if (!mine()) return;
        current = openFetchStream(fetchFn, `${root}/subscribe/${encodeURIComponent(flowId)}${types ? `?${types}` : ""}`, headers, from, options.withCredentials ?? false, events);
      },
      (err) => events.ended(new FlowsyncClientError(`getToken failed: ${(err as Error)?.message}`, { cause: err }), false),
    );
  };

  const resync = (reason: "initial" | "reset") => {
    if (state === "closed") return;
    stopCurrent();
    needsSnapshot = true;
    setState(reason === "initial" ? "connecting" : "resyncing");
    const gen = generation;
    const abort = new AbortController();
    current = { close: () => abort.abort() };
    void (async () => {
      try {
        const res = await fetchFn(`${root}/flows/${encodeURIComponent(flowId)}/snapshot${options.logs ? "?logs=1" : ""}`, {
          headers: { Accept: "application/json", ...(await requestHeaders()) },
          signal: abort.signal,
          ...(options.withCredentials ? { credentials: "include" as const } : {}),
        });
        if (res.status !== 200) throw await responseError(res, "snapshot");
        const parsed = snapshotDataSchema.safeParse(await res.json());
        if (!parsed.success) throw new FlowsyncClientError(`snapshot: the answer failed its schema: ${parsed.error.message}`);
        if (gen !== generation) return;
        current = undefined;
        applySnapshot(parsed.data, reason);
        attempt = 0;
        connect();
      } catch (err) {
        if (gen !== generation) return;
        current = undefined;
        const error = err instanceof Error ? err : new Error(String(err));
        if (err instanceof FlowsyncClientError && err.status !== undefined && isFatalStatus(err.status)) return fail(error);
        report(error);
        later(backoff(), () => resync(reason));
      }
    })();
  };

  const start = () => {
    const first = options.snapshot;
    if (typeof first === "object") {
      applySnapshot(first, "initial");
      connect();
    } else if (lastEventId !== undefined || first === false) {
      connect();
    } else {
      resync("initial");
    }
  };

  const subscription: FlowSubscription = {
    flowId,
    transport: kind,
    stats,
    get state() {
      return state;
    },
    get lastEventId() {
      return lastEventId;
    },
    reconnect(delayMs = 0) {
      if (state === "closed") return;
      stopCurrent();
      setState("reconnecting");
      later(delayMs, connect);
    },
    close() {
      if (state === "closed") return;
      stopCurrent();
      setState("closed");
    },
  };
  start();
  return subscription;
}
