/**
 * One SSE response: headers, the `retry:` hint, heartbeats, then the
 * subscription's frames, written only as fast as the socket drains.
 *
 * The connection writes the response itself (`ctx.respond = false`) instead of
 * handing Koa a Readable body. A Readable is the usual Koa way, but the benchmark
 * showed what it costs on this path (BENCHMARKS.md, profiles and heap before/
 * after): per frame a Readable push, pipe and nextTick; per connection a
 * Readable, `stream.pipeline` with end-of-stream listeners on both sides, a
 * generator and a timer. Here: before live (first frame, RESET, replay) the
 * connection pumps the subscription's backlog generator; live, it takes straight
 * from the subscriber's queue whenever the socket can take more, and whatever
 * piled up meanwhile leaves as one `res.write`. A write that returns false stops
 * the taking until `drain`, so a slow client's backlog stays in its byte-bounded
 * queue. Heartbeats come from one timer per interval for all connections of the
 * app (heartbeats.ts).
 *
 * Clean-up is driven by the response's `close` event (client gone, or the
 * response over): it aborts the backlog generator, whose awaits race that signal
 * (a generator's return() takes effect only once its pending await settles),
 * closes the subscription and releases the admission slot.
 *
 * Ends the server decides on (the queue closes without the client leaving):
 * - overflow: the client stopped reading; the response ends right after the
 *   bytes already written, and a client that reads later finds a properly
 *   ended stream;
 * - token expired (`expiresAt`): a last `: token expired` comment, then the end;
 * - shutdown: the end.
 * Either way a client that has not read to the end within END_GRACE_MS has its
 * socket cut: a client that never reads holds no socket and no memory for long.
 * The client resumes from the last id it actually received.
 */
import type { ServerResponse } from "node:http";
import type { Context } from "koa";
import type { Logger } from "pino";
import type { CloseReason } from "../hub/subscriber-queue";
import type { Subscription } from "../hub/subscriptions";
import { squashError } from "../errors";
import { comment, retry } from "../events/sse-frame";
import type { HeartbeatMember, Heartbeats } from "./heartbeats";

export interface SseOptions {
  retryMs: number;
  heartbeatMs: number;
}

export interface StreamOptions extends SseOptions {
  /** The app's heartbeat registry (one interval per period for all its connections). */
  heartbeats: Heartbeats;
  /** When the stream must end (ms since the epoch): the expiry of the token that opened it. */
  expiresAt?: number;
  /** Called once when the response is over (limits release their slot here). */
  onEnd?: () => void;
  /** Where a failed backlog (e.g. a catch-up stream error) is reported. */
  logger?: Logger;
}

/** How long an ended stream may take to flush before its socket is cut. */
const END_GRACE_MS = 5000;
/** setTimeout's ceiling; a later expiry re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const HEARTBEAT = comment();
const HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  Connection: "keep-alive",
  // nginx and friends buffer responses unless told otherwise.
  "X-Accel-Buffering": "no",
};

/** Opens the subscription (through `open`, which must pass `onClose` on) and streams it as the response. */
export function streamSubscription(ctx: Context, open: (onClose: (reason: CloseReason) => void) => Subscription, options: StreamOptions): void {
  // The client left during an await before this (authorization, the snapshot): its `close` has already
  // fired and will not again, so nothing may be opened that only `close` would release.
  if (ctx.res.destroyed || ctx.req.destroyed) {
    ctx.respond = false;
    options.onEnd?.();
    return;
  }
  const connection = new SseConnection(ctx.res, options);
  let subscription: Subscription;
  try {
    subscription = open(connection.onQueueClose);
  } catch (err) {
    connection.abandon();
    throw err;
  }
  // Koa has already applied the headers set so far (CORS, …) to `res`; it sends nothing more.
  ctx.status = 200;
  ctx.respond = false;
  connection.start(subscription, options);
}

class SseConnection implements HeartbeatMember {
  readonly #res: ServerResponse;
  readonly #heartbeats: Heartbeats;
  readonly #heartbeatMs: number;
  readonly #onEnd: (() => void) | undefined;
  readonly #logger: Logger | undefined;
  #subscription: Subscription | undefined;
  /** Aborted when the response is over; the backlog generator races it. Dropped once live. */
  #gone: AbortController | undefined = new AbortController();
  #backlog: AsyncGenerator<string> | undefined;
  /** The pump stopped on a full socket and waits for `drain`. */
  #pumpWaiting = false;
  /** The last write returned false: nothing more until `drain`. */
  #blocked = false;
  /** We ended the response (or it is gone). */
  #ended = false;
  #over = false;
  #expiry: NodeJS.Timeout | undefined;
  #cut: NodeJS.Timeout | undefined;

  constructor(res: ServerResponse, { heartbeats, heartbeatMs, onEnd, logger }: StreamOptions) {
    this.#res = res;
    this.#heartbeats = heartbeats;
    this.#heartbeatMs = heartbeatMs;
    this.#onEnd = onEnd;
    this.#logger = logger;
    // `on`, not `once`: `close` comes once anyway, #onOver is idempotent, and `once` costs a wrapper per connection.
    res.on("close", this.#onOver);
  }

  start(subscription: Subscription, { retryMs, expiresAt }: StreamOptions): void {
    this.#subscription = subscription;
    if (this.#over) {
      subscription.close();
      return;
    }
    const res = this.#res;
    res.writeHead(200, HEADERS);
    res.on("drain", this.#onDrain);
    this.#write(retry(retryMs) + comment("flowsync"));
    this.#heartbeats.add(this.#heartbeatMs, this);
    if (expiresAt !== undefined) this.#armExpiry(expiresAt);
    this.#backlog = subscription.backlog(this.#gone!.signal);
    void this.#pump(this.#backlog);
  }

  /** `open` failed: nothing was written; Koa answers with the error. */
  abandon(): void {
    this.#res.off("close", this.#onOver);
    this.#onOver();
  }

  heartbeat(): void {
    // Through the queue, so a heartbeat never jumps ahead of a pending event; only when nothing is pending.
    this.#subscription?.queue.writeIdle(HEARTBEAT);
  }

  /** The queue closed; called synchronously by the queue (see SubscriberQueueOptions.onClose). */
  readonly onQueueClose = (reason: CloseReason): void => {
    if (this.#over || reason === "client-gone") return;
    // Overflow: the stalled socket will not ask again, so end now, after what it already holds.
    if (reason === "overflow") this.#end();
    this.#cut = setTimeout(() => this.#res.destroy(), END_GRACE_MS);
    this.#cut.unref();
  };

  async #pump(backlog: AsyncGenerator<string>): Promise<void> {
    try {
      for (;;) {
        if (this.#blocked) {
          this.#pumpWaiting = true; // #onDrain pumps on
          return;
        }
        const step = await backlog.next();
        if (this.#ended) return;
        if (step.done) break;
        this.#write(step.value);
      }
    } catch (err) {
      if (this.#ended) return;
      this.#logger?.error({ err }, "subscription failed before going live");
      this.#res.destroy();
      return;
    }
    this.#backlog = undefined;
    this.#gone = undefined;
    this.#subscription!.queue.onReadable(this.#flush);
    this.#flush();
  }

  // Made once per connection: the queue calls it after each wake, and once when it closes.
  readonly #flush = (): void => {
    if (this.#ended || this.#backlog) return;
    const queue = this.#subscription!.queue;
    if (queue.closed) {
      if (queue.closeReason === "expired") this.#write(comment("token expired"));
      this.#end();
      return;
    }
    if (this.#blocked) return;
    const chunks = queue.take();
    if (chunks === null) return;
    if (chunks.length === 1) return this.#write(chunks[0]!);
    // Corked: the shared Buffers leave in one writev, with no copy into a string of this connection's own.
    this.#res.cork();
    for (const chunk of chunks) this.#write(chunk);
    this.#res.uncork();
  };

  readonly #onDrain = (): void => {
    this.#blocked = false;
    if (this.#pumpWaiting) {
      this.#pumpWaiting = false;
      if (this.#backlog) void this.#pump(this.#backlog);
      return;
    }
    this.#flush();
  };

  #write(chunk: string | Buffer): void {
    if (!this.#res.write(chunk)) this.#blocked = true;
  }

  #armExpiry(expiresAt: number): void {
    this.#expiry = setTimeout(
      () => (Date.now() >= expiresAt ? this.#subscription?.queue.close("expired") : this.#armExpiry(expiresAt)),
      Math.min(Math.max(expiresAt - Date.now(), 0), MAX_TIMER_MS),
    );
    this.#expiry.unref();
  }

  /** Ends the response after what was written; the subscription is over. */
  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stopStreaming();
    this.#res.end();
  }

  #stopStreaming(): void {
    this.#heartbeats.delete(this.#heartbeatMs, this);
    clearTimeout(this.#expiry);
    this.#subscription?.close();
    this.#backlog?.return(undefined).catch(squashError);
  }

  // The response is over: the client left, or the end we wrote went out.
  readonly #onOver = (): void => {
    if (this.#over) return;
    this.#over = true;
    this.#ended = true;
    this.#gone?.abort();
    clearTimeout(this.#cut);
    this.#res.off("drain", this.#onDrain);
    this.#stopStreaming();
    this.#onEnd?.();
  };
}
