/**
 * A driver change stream that can be closed at any moment without leaving its
 * server cursor behind, and that tells when its opening aggregate has answered.
 *
 * mongodb 7.x: `ChangeStream.close()` while the stream's opening aggregate is in
 * flight ends the cursor's implicit session before the reply (with the cursor
 * id) arrives; neither that close nor a later one sends `killCursors` then, and
 * the server keeps the cursor until its idle timeout (10 minutes on mongod).
 * A subscriber leaving mid catch-up, or a shutdown while the watcher (re)opens,
 * does exactly that. So `close()` first lets an opening aggregate settle (a
 * change-stream aggregate answers at once, it never waits for changes), then
 * closes.
 *
 * A getMore in flight is let settle too (it answers within maxAwaitTimeMS). A
 * close during it sends `killCursors` on another pooled connection, and when the
 * getMore's reply comes in while that connection is still being checked out or
 * established, the driver's cursor, seeing itself closed, ends its implicit
 * session first: `killCursors` then fails client-side ("expired session"),
 * silently, and the server cursor stays. A subscriber leaving right after the
 * last batch of its catch-up (the next getMore is already sent, see catch-up.ts)
 * or a shutdown (the watcher always has a getMore out) hits it under load.
 */
import type { ChangeStream, ChangeStreamDocument } from "mongodb";
import type { ResumeToken } from "../token";
import { FlowsyncError, squashError } from "../errors";

/** How the opening aggregate answered: with an empty first batch, with changes, or not at all. */
export type Opened = "empty" | "changes" | "failed";

/**
 * A getMore answers within its maxAwaitTimeMS (1 s at most here) unless the connection hangs: a
 * black-holed socket would otherwise hold close(), and with it a shutdown, for good. Past this, close()
 * sends killCursors regardless (the race above then may leave the cursor to the server's timeout).
 */
const SETTLE_MS = 5_000;

export class ClosableChangeStream {
  readonly #stream: ChangeStream;
  /** The first tryNext (it sends the aggregate): how the aggregate answered, once it settles. */
  #opening: Promise<Opened> | undefined;
  /** The last tryNext, settled either way: close() waits for it (see above). */
  #inFlight: Promise<unknown> | undefined;
  #closed: Promise<void> | undefined;
  /** Resolves when the aggregate answered with an empty first batch (the driver then emits its postBatchResumeToken). */
  readonly #emptyFirstBatch: Promise<Opened>;

  readonly #settleMs: number;

  /** `settleMs`: how long close() waits for a tryNext in flight before it closes anyway (see close). */
  constructor(stream: ChangeStream, { settleMs = SETTLE_MS }: { settleMs?: number } = {}) {
    this.#stream = stream;
    this.#settleMs = settleMs;
    // The first such event is the aggregate's: a startAfter/resumeAfter token is set before we can listen.
    this.#emptyFirstBatch = new Promise((resolve) => stream.once("resumeTokenChanged", () => resolve("empty")));
  }

  /** The driver's resume token: of the last change, or the postBatchResumeToken of an empty batch. */
  get resumeToken(): ResumeToken | undefined {
    return this.#stream.resumeToken as ResumeToken | undefined;
  }

  /**
   * True once the stream is over: closed by us, or its cursor ended by the server
   * (then tryNext() returns null at once, forever: a loop on it would spin).
   */
  get closed(): boolean {
    return this.#closed !== undefined || this.#stream.closed;
  }

  /** How many changes the driver holds already: that many tryNext() calls need no round trip. */
  bufferedCount(): number {
    return this.#stream.bufferedCount();
  }

  /** The next change, or null after an empty batch; null at once after close(). One call at a time. */
  tryNext(): Promise<ChangeStreamDocument | null> {
    // A getMore sent once close() waits would be in flight when it closes.
    if (this.#closed) return Promise.resolve(null);
    const next = this.#stream.tryNext();
    this.#inFlight = next.then(squashError, squashError);
    this.#opening ??= next.then(
      (change): Opened => (change ? "changes" : "empty"),
      (): Opened => "failed",
    );
    return next;
  }

  /**
   * Resolves once the opening aggregate has answered; call after the first tryNext().
   * After an empty first batch the driver goes straight on to a getMore that may
   * wait maxAwaitTimeMS, so this resolves before that first tryNext() does.
   */
  opened(): Promise<Opened> {
    if (!this.#opening) throw new FlowsyncError("E_INTERNAL", "ClosableChangeStream.opened() before the first tryNext()");
    return Promise.race([this.#emptyFirstBatch, this.#opening]);
  }

  /**
   * Idempotent; resolves once the server cursor is released, after the tryNext in
   * flight (if any) has answered. Never throws.
   * One driver close only: a second, concurrent one ends the session under the
   * first one's killCursors, which then silently does not happen.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      const settled = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.#settleMs);
        timer.unref();
      });
      await Promise.race([this.#inFlight, settled]);
      clearTimeout(timer);
      await this.#stream.close().catch(squashError);
    })();
    return this.#closed;
  }
}
