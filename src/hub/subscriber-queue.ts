/**
 * The bounded outbox of one SSE connection.
 *
 * The hub writes frames in (a batch of a flow's frames as one shared Buffer
 * where it can, see `writeBatch`); the connection pulls them out with `take()`,
 * which hands over everything pending at once (one corked socket write however
 * many events arrived meanwhile), when `onReadable` tells it there is something. The
 * connection pulls only when its socket can take more (sse-stream.ts): then
 * "pending" is exactly "not yet handed to the socket", and a slow client shows
 * up here.
 *
 * Backpressure: when pending bytes exceed `maxBytes`, the queue closes itself
 * with reason "overflow" and frees its pending frames. The connection ends the
 * response; the browser reconnects with the last id it received and replays
 * from there. A frame that finds the queue empty is always taken, however
 * large: the subscriber is keeping up, and refusing it would drop every
 * subscriber of the flow on every event larger than `maxBytes` (the bytes are
 * shared with them, so holding them costs this queue nothing of its own). Memory
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
import { comparePositions } from "../token";

export type CloseReason = "overflow" | "shutdown" | "client-gone" | "reset" | "expired";

/** A frame as written to a socket: encoded once by the hub (Buffer), or a string for one-off frames. */
export type Chunk = string | Buffer;

/** What the hub needs from a subscriber. */
export interface Subscriber {
  /**
   * Queues a frame. `token`: its stream position, if it has one; `bytes`: its UTF-8 size if known;
   * `type`: its event type, if it is an event (a subscriber may want only some types).
   */
  write(chunk: Chunk, token?: string, bytes?: number, type?: string): void;
  /**
   * Queues consecutive frames of one flow as ONE shared Buffer (`count` frames from `firstToken` to
   * `lastToken`), if this subscriber wants every one of them as they are; returns false,
   * having changed nothing, when the hub must write them one by one instead. Optional: without it the
   * hub always writes frame by frame.
   */
  writeBatch?(chunk: Buffer, count: number, firstToken: string, lastToken: string): boolean;
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

/**
 * Defers `fn` to a later turn of the event loop. `first`, where a scheduler has it, defers `fn` ahead
 * of everything deferred that has not run yet (the hub's fan-out of new frames, so that subscribers a
 * sweep has not reached find them already queued).
 */
export interface Schedule {
  (fn: () => void): void;
  readonly first?: (fn: () => void) => void;
}

/** Callbacks a check phase runs before it yields to the event loop (see checkPhaseScheduler). */
const SLICE = 256;

/**
 * A scheduler that runs each `fn` in a later check phase, like `setImmediate`, but with ONE
 * immediate for all the queues that share it: a frame fanned out to 10,000 subscribers schedules
 * one timer, not 10,000. One per hub, so that no state is shared between instances.
 *
 * Time-sliced: a check phase runs what was deferred with `first`, then at most `slice` callbacks (in
 * order), then yields, so that the change stream's next batch is read while a big sweep is still under
 * way. The hub fans new frames out with `first`: subscribers the sweep has not reached yet then find
 * them queued and write them in the same socket write as the earlier ones, so under saturation frames
 * coalesce instead of each waiting for a whole sweep. First in, first out: what waits longest runs
 * first, whichever flow it belongs to.
 */
export function checkPhaseScheduler(slice = SLICE): Schedule {
  let queue: Array<() => void> = [];
  let head = 0;
  let urgent: Array<() => void> = [];
  let armed = false;
  const run = () => {
    armed = false;
    if (urgent.length > 0) {
      const now = urgent;
      urgent = [];
      for (const fn of now) fn();
    }
    // What is deferred while this runs goes after it: it runs in a later check phase.
    const end = Math.min(queue.length, head + slice);
    while (head < end) {
      const fn = queue[head]!;
      queue[head++] = noop; // let it be collected
      fn();
    }
    if (head === queue.length) {
      queue = [];
      head = 0;
    }
    if (head < queue.length || urgent.length > 0) arm();
  };
  const arm = () => {
    if (armed) return;
    armed = true;
    setImmediate(run);
  };
  const schedule = (fn: () => void) => {
    queue.push(fn);
    arm();
  };
  const first = (fn: () => void) => {
    urgent.push(fn);
    arm();
  };
  return Object.assign(schedule, { first });
}

const noop = () => {};

const immediately: Schedule = (fn) => void setImmediate(fn);

export class SubscriberQueue implements Subscriber {
  readonly maxBytes: number;
  readonly #schedule: Schedule;
  // One entry per write (a frame, or a hub batch of frames): chunk, token (the last one of a batch), size.
  #chunks: Chunk[] = [];
  #tokens: (string | undefined)[] = [];
  #sizes: number[] = [];
  // What take() returns, reused: valid until the next take().
  #out: Chunk[] = [];
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

  write(chunk: Chunk, token?: string, bytes = Buffer.byteLength(chunk), type?: string): void {
    if (this.closed) return;
    if (type !== undefined && this.#types !== undefined && !this.#types.has(type)) return;
    if (token !== undefined && this.#backlogEnd !== undefined && comparePositions(token, this.#backlogEnd) <= 0) return;
    this.#push(chunk, token, bytes);
  }

  writeBatch(chunk: Buffer, count: number, firstToken: string, lastToken: string): boolean {
    if (this.closed) return true;
    if (this.#types !== undefined || this.#paused) return false;
    if (this.#backlogEnd !== undefined && comparePositions(firstToken, this.#backlogEnd) <= 0) return false;
    // One by one, the first frame would be taken and the rest would overflow: keep that outcome.
    if (count > 1 && this.#chunks.length === 0 && chunk.length > this.maxBytes) return false;
    this.#push(chunk, lastToken, chunk.length);
    return true;
  }

  #push(chunk: Chunk, token: string | undefined, bytes: number): void {
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
    this.#out = [];
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
      // Paused, the hub wrote frame by frame (writeBatch refuses): every entry is one frame with its token. An
      // unpaused queue (no backlog: release(liveToken) right after open) may hold a batch entry, kept or dropped by
      // its last token; it then holds frames published after it subscribed, none of which anything else delivered.
      const keep = this.#tokens.map((token) => token === undefined || comparePositions(token, mark) > 0);
      this.#chunks = this.#chunks.filter((_, i) => keep[i]);
      this.#tokens = this.#tokens.filter((_, i) => keep[i]);
      this.#sizes = this.#sizes.filter((_, i) => keep[i]);
      this.#bytes = this.#sizes.reduce((sum, n) => sum + n, 0);
    }
    this.#paused = false;
    this.#wake();
  }

  /**
   * Everything pending, as the chunks to write in one go (corked: one writev), or null when
   * nothing may be sent now (empty, paused or closed). The array is reused: it is valid until the
   * next take(). Without a promise: the connection drives its own writes (sse-stream.ts).
   */
  take(): readonly Chunk[] | null {
    if (this.closed || this.#paused || this.#chunks.length === 0) return null;
    // Swapped, not copied: the steady state allocates nothing here.
    const out = this.#chunks;
    this.#chunks = this.#out;
    this.#out = out;
    this.#chunks.length = 0;
    this.#tokens.length = 0;
    this.#sizes.length = 0;
    this.#bytes = 0;
    return out;
  }

  /**
   * Registers the one callback to run (deferred, so that the writes of one tick
   * coalesce) whenever `take()` has something again, and once when the queue closes.
   */
  onReadable(listener: () => void): void {
    this.#listener = listener;
    this.#wake();
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
