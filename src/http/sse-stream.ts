/**
 * One SSE response: headers, the `retry:` hint, heartbeats, then the
 * subscription's frames, pulled only as fast as the socket drains.
 *
 * Clean-up is driven by the request's `close` event, not by Koa destroying the
 * body: a generator parked on `await` would not see `return()` until its await
 * settled (STYLE.md §7), so every await races the connection's AbortSignal.
 */
import { Readable } from "node:stream";
import type { Context } from "koa";
import type { Subscription } from "../hub/subscriptions";
import { comment, retry } from "./sse-frame";

export interface SseOptions {
  retryMs: number;
  heartbeatMs: number;
}

export function streamSubscription(ctx: Context, subscription: Subscription, options: SseOptions): void {
  const gone = new AbortController();
  const abort = () => gone.abort();
  ctx.req.once("close", abort);
  ctx.res.once("close", abort);

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
  } finally {
    clearInterval(heartbeat);
    subscription.close();
  }
}
