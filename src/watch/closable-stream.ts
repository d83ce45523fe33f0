/**
 * A driver change stream that can be closed at any moment without leaving its
 * server cursor behind.
 *
 * mongodb 7.x: `ChangeStream.close()` while the stream's opening aggregate is in
 * flight ends the cursor's implicit session before the reply (with the cursor
 * id) arrives; neither that close nor a later one sends `killCursors` then, and
 * the server keeps the cursor until its idle timeout (10 minutes on mongod).
 * A subscriber leaving mid catch-up, or a shutdown while the watcher (re)opens,
 * does exactly that. So `close()` first lets an opening aggregate settle (a
 * change-stream aggregate answers at once, it never waits for changes), then
 * closes. A getMore in flight needs no such care: `killCursors` interrupts it.
 */
import type { ChangeStream, ChangeStreamDocument } from "mongodb";
import type { ResumeToken } from "../events/cursor";

export class ClosableChangeStream {
  readonly #stream: ChangeStream;
  /** The first tryNext (it sends the aggregate), settled either way. */
  #opening: Promise<unknown> | undefined;
  #closed: Promise<void> | undefined;

  constructor(stream: ChangeStream) {
    this.#stream = stream;
  }

  /** The driver's resume token: of the last change, or the postBatchResumeToken of an empty batch. */
  get resumeToken(): ResumeToken | undefined {
    return this.#stream.resumeToken as ResumeToken | undefined;
  }

  /** The next change, or null after an empty batch. One call at a time. */
  tryNext(): Promise<ChangeStreamDocument | null> {
    const next = this.#stream.tryNext();
    this.#opening ??= next.catch(() => {});
    return next;
  }

  /**
   * Idempotent; resolves once the server cursor is released. Never throws.
   * One driver close only: a second, concurrent one ends the session under the
   * first one's killCursors, which then silently does not happen.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#opening;
      await this.#stream.close().catch(() => {});
    })();
    return this.#closed;
  }
}
