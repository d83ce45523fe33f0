/**
 * The two ways of reading a subscription, behind one small interface:
 *
 * - `EventSource` (browsers): the browser parses, and reconnects by itself with
 *   `Last-Event-ID` after the stream ends. It reports `closed` only when it gave
 *   up (an HTTP error, a wrong content type); then `subscribeFlow` reopens.
 * - `fetch` (Node, or a browser that must send headers such as Authorization):
 *   one request per connection, parsed by `SseParser`; every end is reported and
 *   `subscribeFlow` reconnects with backoff and the last id.
 *
 * Browser-safe: no Node built-ins.
 */
import { EVENT_TYPES } from "./wire.js";
import { FlowsyncClientError, responseError } from "./errors.js";
import { SseParser } from "./sse-parser.js";

export interface TransportEvents {
  /** The response is open (status 200, event stream). */
  open(): void;
  message(event: string, data: string, id: string | undefined): void;
  /** The server's `retry:` hint (fetch only; EventSource applies it itself). */
  retryHint(ms: number): void;
  /** The connection dropped and the transport is reconnecting by itself (EventSource). */
  interrupted(): void;
  /** The connection ended; `error` says why (its `reason` tells whether a retry can help). */
  ended(error: Error | undefined): void;
}

export interface Transport {
  close(): void;
}

/** The part of the DOM `EventSource` this client uses (typed here: the project compiles without the DOM lib). */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  addEventListener(type: string, listener: (event: { data: string; lastEventId: string; type: string }) => void): void;
  close(): void;
}
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

export type FetchLike = (
  input: string,
  init: { headers: Record<string, string>; signal: AbortSignal; credentials?: "include" | "same-origin" | "omit" },
) => Promise<Response>;

export function openEventSource(ES: EventSourceConstructor, url: string, withCredentials: boolean, on: TransportEvents): Transport {
  const es = new ES(url, withCredentials ? { withCredentials } : undefined);
  let closed = false;
  const listener = (e: { data: string; lastEventId: string; type: string }) => {
    if (!closed) on.message(e.type, e.data, e.lastEventId === "" ? undefined : e.lastEventId);
  };
  for (const type of EVENT_TYPES) es.addEventListener(type, listener);
  es.onopen = () => {
    if (!closed) on.open();
  };
  es.onerror = () => {
    if (closed) return;
    // CONNECTING (0): the browser reconnects by itself. CLOSED (2): it gave up.
    if (es.readyState === 2) {
      closed = true;
      on.ended(new FlowsyncClientError("EventSource failed: HTTP error, CORS, or not an event stream", { reason: "protocol" }));
    } else {
      on.interrupted();
    }
  };
  return {
    close() {
      closed = true;
      es.close();
    },
  };
}

export function openFetchStream(
  fetchFn: FetchLike,
  url: string,
  headers: Record<string, string>,
  lastEventId: string | undefined,
  credentials: boolean,
  on: TransportEvents,
): Transport {
  const abort = new AbortController();
  const live = () => !abort.signal.aborted;
  void (async () => {
    let res: Response;
    try {
      const h: Record<string, string> = { Accept: "text/event-stream", ...headers };
      if (lastEventId !== undefined) h["Last-Event-ID"] = lastEventId;
      res = await fetchFn(url, { headers: h, signal: abort.signal, ...(credentials ? { credentials: "include" as const } : {}) });
    } catch (err) {
      if (live()) on.ended(new FlowsyncClientError(`subscribe: ${(err as Error).message}`, { reason: "network", cause: err }));
      return;
    }
    if (res.status !== 200 || !res.body) {
      const error = await responseError(res, "subscribe");
      if (live()) on.ended(error);
      return;
    }
    if (!(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
      await res.body.cancel().catch(() => {});
      if (live()) on.ended(new FlowsyncClientError("subscribe: not an event stream", { reason: "protocol", status: 200 }));
      return;
    }
    if (!live()) return void res.body.cancel().catch(() => {});
    on.open();
    const parser = new SseParser({ message: (m) => live() && on.message(m.event, m.data, m.id), retry: (ms) => on.retryHint(ms) }, lastEventId);
    const reader = res.body.getReader();
    const stop = () => void reader.cancel().catch(() => {});
    abort.signal.addEventListener("abort", stop, { once: true });
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || !live()) break;
        parser.push(value);
      }
    } catch (err) {
      if (live()) on.ended(new FlowsyncClientError(`subscribe: ${(err as Error).message}`, { reason: "network", cause: err }));
      return;
    } finally {
      abort.signal.removeEventListener("abort", stop);
    }
    if (live()) on.ended(undefined);
  })();
  return { close: () => abort.abort() };
}
