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
import { EVENT_TYPES } from "../events/schemas";
import { SseParser } from "./sse-parser";

export interface TransportEvents {
  /** The response is open (status 200, event stream). */
  open(): void;
  message(event: string, data: string, id: string | undefined): void;
  /** The server's `retry:` hint (fetch only; EventSource applies it itself). */
  retryHint(ms: number): void;
  /** The connection dropped and the transport is reconnecting by itself (EventSource). */
  interrupted(): void;
  /** The connection ended for good; `fatal`: do not retry (e.g. 400 for a bad flowId). */
  ended(error: Error | undefined, fatal: boolean): void;
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

export type FetchLike = (input: string, init: { headers: Record<string, string>; signal: AbortSignal; credentials?: "include" | "same-origin" | "omit" }) => Promise<Response>;

/** An HTTP answer the client could not use: `status` and the server's error `code` when it sent one. */
export class FlowsyncClientError extends Error {
  readonly status: number | undefined;
  readonly code: string | undefined;
  constructor(message: string, { status, code, cause }: { status?: number; code?: string; cause?: unknown } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "FlowsyncClientError";
    this.status = status;
    this.code = code;
  }
}

/** Statuses that a retry cannot fix. 401 is retried: `getToken` may return a fresh token. */
export function isFatalStatus(status: number): boolean {
  return status === 400 || status === 403 || status === 404 || status === 405 || status === 410;
}

/** The error a non-200 answer carries (`{error: {code, message}}`), or a generic one. */
export async function responseError(res: Response, what: string): Promise<FlowsyncClientError> {
  let code: string | undefined;
  let message = `${what}: HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === "string") code = body.error.code;
    if (typeof body.error?.message === "string") message = `${what}: HTTP ${res.status} ${code ?? ""} ${body.error.message}`.replace(/\s+/g, " ");
  } catch {
    // not JSON: keep the generic message
  }
  return new FlowsyncClientError(message, { status: res.status, code });
}

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
      on.ended(new FlowsyncClientError("EventSource failed (HTTP error or not an event stream)"), false);
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

export function openFetchStream(fetchFn: FetchLike, url: string, headers: Record<string, string>, lastEventId: string | undefined, credentials: boolean, on: TransportEvents): Transport {
  const abort = new AbortController();
  const live = () => !abort.signal.aborted;
  void (async () => {
    let res: Response;
    try {
      const h: Record<string, string> = { Accept: "text/event-stream", ...headers };
      if (lastEventId !== undefined) h["Last-Event-ID"] = lastEventId;
      res = await fetchFn(url, { headers: h, signal: abort.signal, ...(credentials ? { credentials: "include" as const } : {}) });
    } catch (err) {
      if (live()) on.ended(new FlowsyncClientError(`subscribe: ${(err as Error).message}`, { cause: err }), false);
      return;
    }
    if (res.status !== 200 || !res.body) {
      const error = await responseError(res, "subscribe");
      if (live()) on.ended(error, isFatalStatus(res.status));
      return;
    }
    if (!(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
      await res.body.cancel().catch(() => {});
      if (live()) on.ended(new FlowsyncClientError(`subscribe: expected text/event-stream, got ${res.headers.get("content-type")}`, { status: 200 }), false);
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
      if (live()) on.ended(new FlowsyncClientError(`subscribe: stream broke: ${(err as Error).message}`, { cause: err }), false);
      return;
    } finally {
      abort.signal.removeEventListener("abort", stop);
    }
    if (live()) on.ended(undefined, false);
  })();
  return { close: () => abort.abort() };
}
