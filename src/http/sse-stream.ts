/**
 * One SSE response: headers, the `retry:` hint, heartbeats, then the
 * subscription's frames, pulled only as fast as the socket drains.
 *
 * Clean-up is driven by the request's `close` event, not by Koa destroying the
 * body: a generator parked on `await` would not see `return()` until its await
 * settled (STYLE.md §7), so every await races the connection's AbortSignal.
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
  body = new SseBody(frames(subscription, gone.signal, options));
  ctx.body = body;
}

/**
 * `Readable.from(frames)` plus `finish()`: EOF after what is already buffered,
 * without waiting for the generator (which a stalled socket never pulls again).
 * Pulls one frame at a time (highWaterMark 1), only when the consumer wants more.
 */
class SseBody extends Readable {
  readonly #frames: AsyncGenerator<string>;
  #pulling = false;
  #done = false;

  constructor(frames: AsyncGenerator<string>) {
    super({ highWaterMark: 1 });
    this.#frames = frames;
  }

  override _read(): void {
    if (this.#pulling || this.#done) return;
    this.#pulling = true;
    this.#frames.next().then(
      (step) => {
        this.#pulling = false;
        if (this.#done) return;
        if (step.done) {
          this.#done = true;
          this.push(null);
        } else if (this.push(step.value)) {
          this._read();
        }
      },
      (err: unknown) => this.destroy(err as Error),
    );
  }

  /** Ends the body after the chunks already pushed and lets the generator clean up. */
  finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.push(null);
    this.#frames.return(undefined).catch(squashError);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#done = true;
    this.#frames.return(undefined).catch(squashError);
    callback(err);
  }
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
