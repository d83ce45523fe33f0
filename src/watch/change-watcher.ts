/**
 * The ONE database-level change stream of a flowsync process, and its position.
 *
 *   idle ──start()──▶ starting ──▶ running ──error the driver could not resume──▶ backoff ──▶ running
 *     │                   │           │  └──history lost / invalidate──▶ restart from now (or after
 *     │                   │           │                                   the invalidate) + onRestart
 *     └──────close()──────┴───────────┴──────────────────────────────────────────────▶ closed
 *
 * A start point that is already gone (`startAfter` a token that fell off the
 * oplog) is the same case as history lost while running: start from now + onRestart.
 *
 * The driver already resumes on resumable errors (network, step-down, ...); this
 * loop handles what it gives up on. It iterates with `tryNext()` (iterator mode)
 * so that an empty batch still hands back the postBatchResumeToken: the position
 * keeps moving on an idle database and never ages out of the oplog.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { ChangeStreamDocument, Db, Document } from "mongodb";
import type { Logger } from "pino";
import { FlowsyncError, restartReason, squashError, type RestartReason } from "../errors";
import type { ResumeToken } from "../token";
import { ClosableChangeStream } from "./closable-stream";

export type WatcherState = "idle" | "starting" | "running" | "backoff" | "closed";

export interface ChangeWatcherOptions {
  db: Db;
  pipeline: readonly Document[];
  logger: Logger;
  /** Called for every change, in stream order. Must not throw (it is the hot path). */
  onChange: (change: ChangeStreamDocument) => void;
  /** Called when the stream had to restart somewhere that is not "right after the last change". */
  onRestart: (reason: RestartReason, position: ResumeToken | undefined) => void;
  /** Where to start; undefined = now. */
  startAfter?: ResumeToken;
  /** How long one getMore waits for changes (also how often the idle position advances). */
  maxAwaitTimeMS?: number;
  backoff?: { initialMs: number; maxMs: number };
  /** Test seam for the jitter of the backoff (0 ≤ value < 1). */
  random?: () => number;
}

export class ChangeWatcher {
  #state: WatcherState = "idle";
  #stream: ClosableChangeStream | undefined;
  /** A tryNext() already sent on #stream (by a restart) that the loop must take before asking again. */
  #next: Promise<ChangeStreamDocument | null> | undefined;
  #position: ResumeToken | undefined;
  #loop: Promise<void> | undefined;
  /** The pending start(), settled either way: close() waits for it so that no stream it opened outlives close(). */
  #starting: Promise<void> | undefined;
  #closing = new AbortController();
  #restarts = 0;
  readonly #opts: ChangeWatcherOptions;

  constructor(opts: ChangeWatcherOptions) {
    this.#opts = opts;
    this.#position = opts.startAfter;
  }

  get state(): WatcherState {
    return this.#state;
  }

  /** True while the stream is open and being read. */
  get ready(): boolean {
    return this.#state === "running";
  }

  /** The latest resume token: of the last change, or the high-water mark of an empty batch. */
  get position(): ResumeToken | undefined {
    return this.#position;
  }

  get restarts(): number {
    return this.#restarts;
  }

  /**
   * Opens the stream; resolves once the server accepted it (the first aggregate succeeded).
   * Throws if called twice (also while the first call is still opening), and rejects
   * if the stream cannot be opened (the watcher is then idle again) or close() overtook it.
   */
  start(): Promise<void> {
    if (this.#state !== "idle") return Promise.reject(new FlowsyncError("E_INTERNAL", `ChangeWatcher.start() called in state ${this.#state}`));
    // Claimed before the first await: a concurrent second start() must not open a second stream.
    this.#state = "starting";
    const started = this.#begin();
    this.#starting = started.then(
      () => {},
      () => {},
    );
    return started;
  }

  /** Idempotent; resolves once the stream's cursor is closed and the loop has ended. */
  async close(): Promise<void> {
    if (!this.#isClosed()) {
      this.#state = "closed";
      this.#closing.abort();
      await this.#stream?.close().catch(squashError);
    }
    await this.#starting;
    await this.#loop;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #open(): ClosableChangeStream {
    const { db, pipeline, maxAwaitTimeMS = 1000 } = this.#opts;
    const stream = db.watch([...pipeline], {
      fullDocument: "updateLookup",
      // Pre-images where the collection keeps them: they route deletes (docs/mongodb.md#pre-and-post-images).
      fullDocumentBeforeChange: "whenAvailable",
      maxAwaitTimeMS,
      ...(this.#position ? { startAfter: this.#position } : {}),
    });
    // close() may come while this stream is still opening (shutdown during a start or reopen).
    return new ClosableChangeStream(stream);
  }

  async #begin(): Promise<void> {
    try {
      await this.#openPrimed();
    } catch (err) {
      const reason = restartReason(err);
      if (reason === undefined || this.#isClosed()) throw await this.#startFailed(err);
      this.#opts.logger.error({ err, token: this.#position?._data }, "change stream cannot start from its start position: starting from now");
      this.#position = undefined;
      this.#restarts++;
      try {
        await this.#openPrimed();
      } catch (again) {
        throw await this.#startFailed(again);
      }
      this.#opts.onRestart(reason, this.#position);
    }
    if (this.#isClosed()) throw await this.#startFailed(undefined);
    this.#state = "running";
    this.#loop = this.#run();
  }

  /** Cleans up a start() that will reject; returns the error to reject with. */
  async #startFailed(err: unknown): Promise<unknown> {
    await this.#stream?.close().catch(squashError);
    this.#stream = undefined;
    if (this.#isClosed()) return new FlowsyncError("E_CLOSED", "ChangeWatcher was closed while starting", { cause: err });
    this.#state = "idle";
    return err;
  }

  async #openPrimed(): Promise<void> {
    if (this.#isClosed()) throw new FlowsyncError("E_CLOSED", "ChangeWatcher is closed");
    this.#stream = this.#open();
    await this.#prime(this.#stream);
  }

  /** Sends the aggregate now, so start() fails fast on a bad pipeline or an unreachable server. */
  async #prime(stream: ClosableChangeStream): Promise<void> {
    const change = await stream.tryNext();
    this.#position = stream.resumeToken ?? this.#position;
    if (change) this.#deliver(change);
  }

  async #run(): Promise<void> {
    const { logger } = this.#opts;
    let failures = 0;
    while (!this.#isClosed()) {
      const stream = this.#stream!;
      try {
        const next = this.#next ?? stream.tryNext();
        this.#next = undefined;
        const change = await next;
        if (change) this.#deliver(change);
        else this.#position = stream.resumeToken ?? this.#position;
        // A cursor the server ended without an invalidate answers null at once, forever: reopen instead of spinning.
        if (!change && stream.closed && !this.#isClosed()) throw new FlowsyncError("E_CHANGE_STREAM_ENDED", "change stream cursor ended by the server");
        if (this.#state === "backoff") this.#state = "running";
        failures = 0;
        if (change?.operationType === "invalidate") await this.#restart("stream-invalidated");
      } catch (err) {
        if (this.#isClosed()) break;
        const reason = restartReason(err);
        if (reason !== undefined) {
          logger.error({ err, token: this.#position?._data }, "change stream cannot resume from its position: restarting from now");
          this.#position = undefined;
          await this.#restart(reason);
          continue;
        }
        failures++;
        this.#state = "backoff";
        const delay = this.#backoff(failures);
        logger.warn({ err, attempt: failures, delayMs: delay, token: this.#position?._data }, "change stream failed: reopening from its last position");
        await stream.close().catch(squashError);
        await sleep(delay, undefined, { signal: this.#closing.signal }).catch(squashError);
        if (this.#isClosed()) break;
        this.#stream = this.#open();
      }
    }
    await this.#stream?.close().catch(squashError);
  }

  // A method, not an inline comparison: close() changes the state while the loop awaits.
  #isClosed(): boolean {
    return this.#state === "closed";
  }

  #deliver(change: ChangeStreamDocument): void {
    this.#position = change._id as ResumeToken;
    this.#opts.onChange(change);
  }

  /** Reopens the stream after history loss (from now) or an invalidate (right after it). */
  async #restart(reason: RestartReason): Promise<void> {
    this.#restarts++;
    await this.#stream?.close().catch(squashError);
    if (this.#isClosed()) return;
    const stream = (this.#stream = this.#open());
    // The loop takes this first result: its changes reach subscribers only after the RESET below.
    this.#next = stream.tryNext();
    this.#next.catch(squashError); // the loop's error path handles a failure (backoff, then reopen)
    const opened = await stream.opened();
    if (opened === "empty") this.#position = stream.resumeToken ?? this.#position;
    else if (opened === "failed") this.#opts.logger.warn("change stream restart failed: reopening after a backoff");
    // At once, not after the first getMore (up to maxAwaitTimeMS). Its id is where the new stream starts,
    // when known: not if changes came with the first batch (the client continues from those).
    this.#opts.onRestart(reason, opened === "empty" ? this.#position : undefined);
  }

  /** Full-jitter exponential backoff. */
  #backoff(attempt: number): number {
    const { initialMs, maxMs } = this.#opts.backoff ?? { initialMs: 100, maxMs: 10_000 };
    const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 20));
    return Math.floor((this.#opts.random ?? Math.random)() * cap);
  }
}
