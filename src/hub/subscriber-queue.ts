/**
 * The bounded outbox of one SSE connection.
 *
 * The hub writes frames in; the connection pulls them out with `take()`, which
 * hands over everything pending as ONE string (one socket write however many
 * events arrived meanwhile), when `onReadable` tells it there is something. The
 * connection pulls only when its socket can take more (sse-stream.ts): then
 * "pending" is exactly "not yet handed to the socket", and a slow client shows
 * up here.
 *
 * Backpressure: when pending bytes exceed `maxBytes`, the queue closes itself
 * with reason "overflow" and frees its pending frames. The connection ends the
 * response; the browser reconnects with the last id it received and replays
 * from there. A frame that finds the queue empty is always taken, however
 * large: the subscriber is keeping up, and refusing it would drop every
 * subscriber of the flow on every event larger than `maxBytes` (the string is
 * shared with them, so holding it costs this queue nothing of its own). Memory
 * per subscriber is therefore bounded by `maxBytes`, or by one frame.
 *
 * Backlog handoff: a queue created `paused` collects live frames (with their
 * tokens) but hands nothing out, while the connection streams the backlog (a
 * replay or catch-up) by itself. `release(backlogEnd)` then drops the collected
 * frames at or before that token and, from then on, ignores any frame at or
 * before it: no gap (the queue was registered before the backlog was read) and
 * no duplicate.
 */
import { FlowsyncError } from "../errors";

export type CloseReason = "overflow" | "shutdown" | "client-gone" | "reset" | "expired";

/** What the hub needs from a subscriber. */
export interface Subscriber {
  /**
   * Queues a frame. `token`: its stream position, if it has one; `bytes`: its UTF-8 size if known;
   * `type`: its event type, if it is an event (a subscriber may want only some types).
   */
  write(chunk: string, token?: string, bytes?: number, type?: string): void;
  close(reason: CloseReason): void;
  readonly closed: boolean;
}

export interface SubscriberQueueOptions {
  /** Most unsent bytes before the subscriber is dropped. */
  maxBytes: number;
  /** Start paused (a catch-up runs first); see `release`. Default false. */
  paused?: boolean;
  /** Event types this subscriber wants (`?types=`); undefined = all. Frames without a type always pass. */
  types?: ReadonlySet<string>;
  /**
   * How a wake-up is deferred so that writes of one tick coalesce. Default: `setImmediate`;
   * the hub passes its `checkPhaseScheduler()` so that all its queues share one immediate.
   */
  schedule?: (fn: () => void) => void;
  /**
   * Called once when the queue closes, whatever closed it. The connection needs this
   * for closes it did not ask for ("overflow" above all): a stalled socket never
   * asks for more, and only a callback reaches it.
   */
  onClose?: (reason: CloseReason) => void;
}

export type Schedule = (fn: () => void) => void;

/**
 * A scheduler that runs each `fn` in the next check phase, like `setImmediate`,
 * but with ONE immediate per tick for all the queues that share it: a frame fanned
 * out to 10,000 subscribers schedules one timer, not 10,000 (docs/benchmarks.md,
 * profile). One per hub, so that no state is shared between instances.
 */
export function checkPhaseScheduler(): Schedule {
  let deferred: Array<() => void> = [];
  let spare: Array<() => void> = [];
  const runDeferred = () => {
    // Swap first: a callback that defers again runs in the next check phase.
    const batch = deferred;
    deferred = spare;
    spare = batch;
    for (let i = 0; i < batch.length; i++) batch[i]!();
    batch.length = 0;
  };
  return (fn) => {
    if (deferred.push(fn) === 1) setImmediate(runDeferred);
  };
}

const immediately: Schedule = (fn) => void setImmediate(fn);

export class SubscriberQueue implements Subscriber {
  readonly maxBytes: number;
  readonly #schedule: Schedule;
  #chunks: string[] = [];
  #tokens: (string | undefined)[] = [];
  #sizes: number[] = [];
  #bytes = 0;
  #paused: boolean;
  readonly #types: ReadonlySet<string> | undefined;
  /** Frames at or before this token are dropped: the backlog delivered them (see `release`). */
  #backlogEnd: string | undefined;
  #closeReason: CloseReason | undefined;
  #listener: (() => void) | undefined;
  #wakeScheduled = false;
  readonly #onClose: ((reason: CloseReason) => void) | undefined;

  constructor({ maxBytes, paused = false, types, schedule = immediately, onClose }: SubscriberQueueOptions) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new FlowsyncError("E_INTERNAL", `SubscriberQueue maxBytes must be an integer ≥ 1, got ${maxBytes}`);
    }
    this.maxBytes = maxBytes;
    this.#paused = paused;
    this.#types = types;
    this.#schedule = schedule;
    this.#onClose = onClose;
  }

  get closed(): boolean {
    return this.#closeReason !== undefined;
  }

  get closeReason(): CloseReason | undefined {
    return this.#closeReason;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get pendingBytes(): number {
    return this.#bytes;
  }

  write(chunk: string, token?: string, bytes = Buffer.byteLength(chunk), type?: string): void {
    if (this.closed) return;
    if (type !== undefined && this.#types !== undefined && !this.#types.has(type)) return;
    if (token !== undefined && this.#backlogEnd !== undefined && token <= this.#backlogEnd) return;
    const behind = this.#chunks.length > 0;
    this.#chunks.push(chunk);
    this.#tokens.push(token);
    this.#sizes.push(bytes);
    this.#bytes += bytes;
    if (this.#bytes > this.maxBytes && behind) {
      this.close("overflow");
      return;
    }
    this.#wake();
  }

  /**
   * A frame that only keeps an idle connection open (a heartbeat comment): written when nothing
   * is pending, dropped otherwise. Pending data keeps the connection busy by itself, and queued
   * behind a frame larger than `maxBytes` a heartbeat would count as "behind" and drop a
   * subscriber that is keeping up.
   */
  writeIdle(chunk: string): void {
    if (this.#chunks.length === 0) this.write(chunk);
  }

  /** Closes the queue once; pending frames are dropped (the client resumes from its last id). */
  close(reason: CloseReason): void {
    if (this.closed) return;
    this.#closeReason = reason;
    this.#chunks = [];
    this.#tokens = [];
    this.#sizes = [];
    this.#bytes = 0;
    this.#onClose?.(reason);
    if (this.#listener) this.#schedule(this.#listener);
  }

  /**
   * Ends a pause (see the module comment). `backlogEnd`: the last token the
   * backlog delivered; frames at or before it are dropped now and later.
   */
  release(backlogEnd?: string): void {
    if (backlogEnd !== undefined && (this.#backlogEnd === undefined || backlogEnd > this.#backlogEnd)) {
      this.#backlogEnd = backlogEnd;
    }
    const mark = this.#backlogEnd;
    if (mark !== undefined) {
      const keep = this.#tokens.map((token) => token === undefined || token > mark);
      this.#chunks = this.#chunks.filter((_, i) => keep[i]);
      this.#tokens = this.#tokens.filter((_, i) => keep[i]);
      this.#sizes = this.#sizes.filter((_, i) => keep[i]);
      this.#bytes = this.#sizes.reduce((sum, n) => sum + n, 0);
    }
    this.#paused = false;
    this.#wake();
  }

  /**
   * Everything pending as one string, or null when nothing may be sent now
   * (empty, paused or closed). Without a promise: the connection drives its own
   * writes (sse-stream.ts).
   */
  take(): string | null {
    return this.closed || this.#paused || this.#chunks.length === 0 ? null : this.#take();
  }

  /**
   * Registers the one callback to run (deferred, so that the writes of one tick
   * coalesce) whenever `take()` has something again, and once when the queue closes.
   */
  onReadable(listener: () => void): void {
    this.#listener = listener;
    this.#wake();
  }

  #take(): string {
    const chunks = this.#chunks;
    const out = chunks.length === 1 ? (chunks[0] as string) : chunks.join("");
    // Emptied in place: the steady state allocates nothing here.
    chunks.length = 0;
    this.#tokens.length = 0;
    this.#sizes.length = 0;
    this.#bytes = 0;
    return out;
  }

  // Deferred so that all frames written in this tick leave in one chunk.
  #wake(): void {
    if (this.#wakeScheduled || !this.#listener || this.#paused || this.#chunks.length === 0) return;
    this.#wakeScheduled = true;
    this.#schedule(this.#flush);
  }

  // Made once per queue, so that a wake allocates no closure.
  readonly #flush = (): void => {
    this.#wakeScheduled = false;
    if (this.closed || this.#paused || this.#chunks.length === 0) return;
    this.#listener?.();
  };
}
