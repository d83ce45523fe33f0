/**
 * A bounded ring of the most recent frames, in stream order, so that a short
 * reconnect is served from memory instead of a catch-up change stream.
 *
 * Tokens are resume-token `_data` strings: uppercase hex whose plain string
 * order is the stream order (KeyString encoding is bytewise-ordered; see
 * docs/mongodb.md#resume-tokens). So `after()` binary-searches by string comparison,
 * through `comparePositions`, which also orders the sub-positions of one change's events.
 *
 * The window: the buffer can vouch for "every event after T" only if no event
 * after T was ever evicted and nothing after T was missed. It keeps a `floor`:
 * the newest token at or below which it knows nothing (the last evicted entry,
 * or the position given to `reset`). `after(T)` answers for T ≥ floor, or for
 * T ≥ the oldest entry when nothing was evicted since the last reset; otherwise
 * `undefined` (the caller falls back to a catch-up stream).
 *
 * The owner must call `reset()` whenever the stream restarts somewhere that is
 * not "right after the last pushed event" (history lost, invalidate): the kept
 * entries would otherwise pretend that nothing happened in the gap.
 */
import { FlowsyncError } from "../errors";
import { comparePositions } from "../token";

export interface ReplayEntry {
  readonly token: string;
  readonly flowId: string;
  readonly frame: string;
  /** The event type (SSE `event:`), so that a subscription narrowed with ?types= can skip it. */
  readonly type?: string;
}

export interface ReplayBufferOptions {
  /** How many events to keep, all flows together; ≥ 1. */
  capacity: number;
}

export class ReplayBuffer {
  readonly capacity: number;
  #ring: (ReplayEntry | undefined)[];
  #start = 0; // physical index of the oldest entry
  #size = 0;
  #floor: string | undefined;

  constructor({ capacity }: ReplayBufferOptions) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new FlowsyncError("E_INTERNAL", `ReplayBuffer capacity must be an integer ≥ 1, got ${capacity}`);
    }
    this.capacity = capacity;
    this.#ring = new Array<ReplayEntry | undefined>(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** The oldest kept token, if any. */
  get oldestToken(): string | undefined {
    return this.#size === 0 ? undefined : this.#at(0).token;
  }

  /** The newest kept token, if any. */
  get newestToken(): string | undefined {
    return this.#size === 0 ? undefined : this.#at(this.#size - 1).token;
  }

  #at(logical: number): ReplayEntry {
    return this.#ring[(this.#start + logical) % this.capacity] as ReplayEntry;
  }

  /**
   * Appends an event. A token not greater than the newest one means the stream
   * went back (a restart the owner did not announce with `reset`): the window
   * restarts at this entry rather than mixing two histories.
   */
  push(entry: ReplayEntry): void {
    const newest = this.newestToken;
    if (
      (newest !== undefined && comparePositions(entry.token, newest) <= 0) ||
      (this.#floor !== undefined && comparePositions(entry.token, this.#floor) <= 0)
    ) {
      this.reset();
    }
    if (this.#size === this.capacity) {
      this.#floor = this.#at(0).token;
      this.#ring[this.#start] = entry;
      this.#start = (this.#start + 1) % this.capacity;
    } else {
      this.#ring[(this.#start + this.#size) % this.capacity] = entry;
      this.#size++;
    }
  }

  /**
   * Forgets every entry. `floor`: the stream position the new history starts
   * from (everything after it will be pushed), e.g. the token the watcher
   * (re)started at; omitted → only tokens ≥ the next pushed entry are served.
   */
  reset(floor?: string): void {
    this.#ring.fill(undefined);
    this.#start = 0;
    this.#size = 0;
    this.#floor = floor;
  }

  /** Whether `after(token)` can answer. */
  covers(token: string): boolean {
    const lowest = this.#floor ?? this.oldestToken;
    return lowest !== undefined && comparePositions(token, lowest) >= 0;
  }

  /**
   * The entries of `flowId` strictly after `token`, oldest first, or `undefined`
   * if the buffer cannot vouch for that range (see the module comment). A token
   * newer than everything kept yields `[]`.
   */
  after(token: string, flowId: string): ReplayEntry[] | undefined {
    if (!this.covers(token)) return undefined;
    // First logical index whose token is > `token`.
    let lo = 0;
    let hi = this.#size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (comparePositions(this.#at(mid).token, token) <= 0) lo = mid + 1;
      else hi = mid;
    }
    const out: ReplayEntry[] = [];
    for (let i = lo; i < this.#size; i++) {
      const entry = this.#at(i);
      if (entry.flowId === flowId) out.push(entry);
    }
    return out;
  }
}
