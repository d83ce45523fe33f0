/**
 * One SSE response: headers, the `retry:` hint, heartbeats, then the
 * subscription's frames, pulled only as fast as the socket drains.
 *
 * The body is a Readable that Koa pipes to the response. Before live (first
 * frame, RESET, replay) it pulls from the subscription's backlog generator;
 * live, it takes straight from the subscriber's queue, which calls back when it
 * has something again: no promise, generator step or abort listener per frame,
 * and whatever piled up meanwhile leaves as one write. That is what fanning one
 * event out to 10,000 connections costs (BENCHMARKS.md, profile before/after).
 *
 * Clean-up is driven by the request's `close` event, not by Koa destroying the
 * body: a generator parked on `await` would not see `return()` until its await
 * settled (STYLE.md §7), so the backlog generator races the connection's AbortSignal.
 *
 * Ends the server decides on (the queue closes without the client leaving):
 * - overflow: the client stopped reading. Its generator is parked on a `yield`
 *   the stalled socket never pulls, so the body is ended from outside
 *   (`SseBody.finish`): the response ends right after the bytes already written,
 *   and a client that reads later finds a properly ended stream.
 * - token expired (`expiresAt`), shutdown: the generator ends the stream (a last
 *   `: token expired` comment when expired).
 * Either way a client that has not read to the end within END_GRACE_MS has its
 * socket cut: a client that never reads holds no socket and no memory for long.
 * The client resumes from the last id it actually received.
 */
import { Readable } from "node:stream";
import type { Context } from "koa";
import type { CloseReason } from "../hub/subscriber-queue";
import type { Subscription } from "../hub/subscriptions";
import { squashError } from "../errors";
import { comment, retry } from "./sse-frame";

export interface SseOptions {
  retryMs: number;
  heartbeatMs: number;
}

export interface StreamOptions extends SseOptions {
  /** When the stream must end (ms since the epoch): the expiry of the token that opened it. */
  expiresAt?: number;
  /** Called once when the response is over (limits release their slot here). */
  onEnd?: () => void;
}

/** How long an ended stream may take to flush before its socket is cut. */
const END_GRACE_MS = 5000;
/** setTimeout's ceiling; a later expiry re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Opens the subscription (through `open`, which must pass `onClose` on) and streams it as the response. */
export function streamSubscription(ctx: Context, open: (onClose: (reason: CloseReason) => void) => Subscription, options: StreamOptions): void {
  const gone = new AbortController();
  let expiry: NodeJS.Timeout | undefined;
  let cut: NodeJS.Timeout | undefined;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    gone.abort();
    clearTimeout(expiry);
    clearTimeout(cut);
    options.onEnd?.();
  };
  ctx.req.once("close", end);
  ctx.res.once("close", end);

  let body: SseBody | undefined;
  const onClose = (reason: CloseReason) => {
    if (ended || reason === "client-gone") return;
    if (reason === "overflow") body?.finish();
    cut = setTimeout(() => ctx.res.destroy(), END_GRACE_MS);
    cut.unref();
  };
  let subscription: Subscription;
  try {
    subscription = open(onClose);
  } catch (err) {
    end();
    throw err;
  }

  if (options.expiresAt !== undefined) {
    const expiresAt = options.expiresAt;
    const arm = () => {
      expiry = setTimeout(() => (Date.now() >= expiresAt ? subscription.queue.close("expired") : arm()), Math.min(Math.max(expiresAt - Date.now(), 0), MAX_TIMER_MS));
      expiry.unref();
    };
    arm();
  }

  ctx.status = 200;
  ctx.set({
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    Connection: "keep-alive",
    // nginx and friends buffer responses unless told otherwise.
    "X-Accel-Buffering": "no",
  });
  body = new SseBody(subscription, gone.signal, options);
  ctx.body = body;
}

/**
 * The response body: the preamble, the backlog (async, from the generator), then
 * live frames taken from the queue whenever the consumer wants more (`_read`).
 * Object mode: strings go to the response as they are, without a Buffer copy
 * per connection here; highWaterMark 1: at most one chunk waits in the Readable,
 * the rest stays in the subscriber's byte-bounded queue.
 */
class SseBody extends Readable {
  readonly #subscription: Subscription;
  readonly #signal: AbortSignal;
  #backlog: AsyncGenerator<string> | undefined;
  #pumping = false;
  /** The consumer asked for data (`_read`) and got none yet. */
  #wanted = false;
  #done = false;
  readonly #heartbeat: NodeJS.Timeout;

  constructor(subscription: Subscription, signal: AbortSignal, { retryMs, heartbeatMs }: SseOptions) {
    super({ objectMode: true, highWaterMark: 1 });
    this.#subscription = subscription;
    this.#signal = signal;
    this.#backlog = subscription.backlog(signal);
    // Through the queue, so a heartbeat never jumps ahead of a pending event and obeys the byte limit.
    this.#heartbeat = setInterval(() => subscription.queue.write(comment()), heartbeatMs);
    this.#heartbeat.unref();
    signal.addEventListener("abort", () => this.#end(), { once: true });
    this.push(retry(retryMs) + comment("flowsync"));
  }

  override _read(): void {
    this.#wanted = true;
    if (this.#done) return;
    if (this.#backlog) {
      if (!this.#pumping) void this.#pump(this.#backlog);
      return;
    }
    this.#live();
  }

  async #pump(backlog: AsyncGenerator<string>): Promise<void> {
    this.#pumping = true;
    try {
      for (;;) {
        const step = await backlog.next();
        if (this.#done) return;
        if (step.done) break;
        this.#wanted = false;
        if (!this.push(step.value)) return; // _read pumps on once the socket drained
      }
    } catch (err) {
      this.destroy(err as Error);
      return;
    } finally {
      this.#pumping = false;
    }
    this.#backlog = undefined;
    this.#subscription.queue.onReadable(this.#onReadable);
    if (this.#wanted) this.#live();
  }

  // Made once: the queue calls it after every wake, and once when it closes.
  readonly #onReadable = (): void => {
    if (this.#wanted || this.#subscription.queue.closed) this.#live();
  };

  #live(): void {
    const queue = this.#subscription.queue;
    if (queue.closed) {
      if (queue.closeReason === "expired" && !this.#signal.aborted && !this.#done) this.push(comment("token expired"));
      this.#end();
      return;
    }
    const chunk = queue.take();
    if (chunk === null) return; // onReadable calls back
    this.#wanted = false;
    this.push(chunk);
  }

  /** Ends the body after the chunks already pushed (overflow: the stalled socket never asks again). */
  finish(): void {
    this.#end();
  }

  #end(): void {
    clearInterval(this.#heartbeat);
    this.#subscription.close();
    if (this.#done) return;
    this.#done = true;
    this.push(null);
    this.#backlog?.return(undefined).catch(squashError);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#done = true;
    clearInterval(this.#heartbeat);
    this.#subscription.close();
    this.#backlog?.return(undefined).catch(squashError);
    callback(err);
  }
}
