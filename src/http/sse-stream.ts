/**
 * One SSE response: headers, the `retry:` hint, heartbeats, then the
 * subscription's frames, pulled only as fast as the socket drains.
 *
 * Clean-up is driven by the request's `close` event, not by Koa destroying the
 * body: a generator parked on `await` would not see `return()` until its await
 * settled (STYLE.md §7), so every await races the connection's AbortSignal.
 *
 * Ends the server decides on (the queue closes without the client leaving):
 * - overflow: the client stopped reading, so nothing written now would reach it
 *   and the generator, parked on a `yield` the socket never pulls, would never
 *   run again: the socket is destroyed at once. The client resumes from the last
 *   id it actually received.
 * - token expired (`expiresAt`), shutdown: the stream ends properly (a last
 *   `: token expired` comment when expired); a client that does not read it within
 *   END_GRACE_MS is cut like an overflowing one.
 */
import { Readable } from "node:stream";
import type { Context } from "koa";
import type { CloseReason } from "../hub/subscriber-queue";
import type { Subscription } from "../hub/subscriptions";
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
const END_GRACE_MS = 1000;
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

  const onClose = (reason: CloseReason) => {
    if (ended || reason === "client-gone") return;
    if (reason === "overflow") {
      ctx.res.destroy();
      return;
    }
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
  ctx.body = Readable.from(frames(subscription, gone.signal, options), { objectMode: false, highWaterMark: 1 });
}

async function* frames(subscription: Subscription, signal: AbortSignal, { retryMs, heartbeatMs }: SseOptions): AsyncGenerator<string> {
  // Through the queue, so a heartbeat never jumps ahead of a pending event and obeys the byte limit.
  const heartbeat = setInterval(() => subscription.queue.write(comment()), heartbeatMs);
  heartbeat.unref();
  try {
    yield retry(retryMs) + comment("flowsync");
    yield* subscription.frames(signal);
    if (subscription.queue.closeReason === "expired" && !signal.aborted) yield comment("token expired");
  } finally {
    clearInterval(heartbeat);
    subscription.close();
  }
}
