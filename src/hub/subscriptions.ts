/**
 * Opening a subscription: what a (re)connecting client receives, in order.
 *
 *   no cursor                 → live events
 *   cursor in the replay buffer → the flow's buffered events after it, then live
 *   cursor older than the buffer → a catch-up change stream from it, then live
 *   malformed / foreign / unknown / too old → RESET (id = the live position), then live
 *
 * No gap, no duplicate: the subscriber's queue is registered on the hub, paused,
 * BEFORE the backlog is read; the backlog ends at the live position `until` taken
 * at that moment; `release(until)` then drops any live frame at or before it.
 */
import type { ChangeStreamDocument } from "mongodb";
import type { Logger } from "pino";
import { restartReason, squashError } from "../errors";
import { decodeCursor, encodeCursor } from "../events/cursor";
import type { ResetReason } from "../events/schemas";
import { idOnly } from "../events/sse-frame";
import { laterToken, type ResumeToken } from "../token";
import type { CatchUpStart } from "../watch/catch-up";
import type { ChangeFeed } from "./change-feed";
import type { FlowHub } from "./flow-hub";
import type { Limiter } from "./limiter";
import { SubscriberQueue, type CloseReason } from "./subscriber-queue";

/** Reads the changes after `from` up to `until` (inclusive) and returns its final position; see watch/catch-up.ts. */
export type CatchUp = (from: CatchUpStart, until: string, flowId: string, signal: AbortSignal) => AsyncGenerator<ChangeStreamDocument, string | undefined>;

export interface OpenOptions {
  /** The client's cursor, if it sent one (the caller applies "header wins over query"). */
  lastEventId?: string;
  /** Only these event types (RESET always passes). */
  types?: ReadonlySet<string>;
  /** A frame to send before anything else (the SNAPSHOT event of `?snapshot=1`). */
  first?: string;
  /** Called once when the subscriber's queue closes (see SubscriberQueueOptions.onClose). */
  onClose?: (reason: CloseReason) => void;
}

export interface SubscriptionsOptions {
  hub: FlowHub;
  feed: ChangeFeed;
  /** The live watcher's current position. */
  position: () => ResumeToken | undefined;
  catchUp: CatchUp;
  limiter: Limiter;
  scope: string;
  /** Most unsent bytes per subscriber before it is dropped. */
  maxBytes: number;
  logger: Logger;
}

export interface SubscriptionCounters {
  opened: number;
  replayedFromMemory: number;
  replayedFromMongo: number;
  resets: number;
}

export interface Subscription {
  readonly flowId: string;
  readonly queue: SubscriberQueue;
  /** Every frame for this client, backlog first, then live; ends when the queue closes or `signal` aborts. */
  frames(signal: AbortSignal): AsyncGenerator<string>;
  /**
   * Only what comes before live: the first frame, a RESET, or the replay. When it
   * is done the queue is released, and the caller takes live frames from `queue`
   * itself (`take()` / `onReadable()`), which costs no promise per frame.
   */
  backlog(signal: AbortSignal): AsyncGenerator<string>;
  /** Unsubscribes and closes the queue (idempotent). */
  close(): void;
}

type Backlog =
  { kind: "none" } | { kind: "reset"; reason: ResetReason } | { kind: "memory"; from: ResumeToken; frames: string[] } | { kind: "mongo"; from: CatchUpStart };

export class Subscriptions {
  readonly counters: SubscriptionCounters = { opened: 0, replayedFromMemory: 0, replayedFromMongo: 0, resets: 0 };
  readonly #o: SubscriptionsOptions;

  constructor(options: SubscriptionsOptions) {
    this.#o = options;
  }

  open(flowId: string, { lastEventId, types, first, onClose }: OpenOptions = {}): Subscription {
    const { hub, position, maxBytes } = this.#o;
    this.counters.opened++;
    const backlog = this.#backlog(flowId, lastEventId, types);
    const queue = new SubscriberQueue({ maxBytes, paused: backlog.kind !== "none" || first !== undefined, types, onClose });
    // Synchronously with the backlog decision: no change can be published in between.
    const until = position()?._data;
    const unsubscribe = hub.subscribe(flowId, queue);
    const close = () => {
      unsubscribe();
      queue.close("client-gone");
    };
    const before = (signal: AbortSignal) => this.#beforeLive(flowId, queue, backlog, until, first, types, signal);
    return { flowId, queue, close, backlog: before, frames: (signal) => this.#frames(queue, before(signal), signal) };
  }

  #backlog(flowId: string, lastEventId: string | undefined, types: ReadonlySet<string> | undefined): Backlog {
    if (lastEventId === undefined) return { kind: "none" };
    const decoded = decodeCursor(lastEventId, this.#o.scope);
    if ("error" in decoded) return { kind: "reset", reason: decoded.error === "foreign" ? "cursor-foreign" : "cursor-malformed" };
    // A snapshot's time cursor has no token to look up in memory: it always catches up from MongoDB.
    if ("time" in decoded) return { kind: "mongo", from: { time: decoded.time } };
    const buffered = this.#o.hub.replayAfter(decoded.ok._data, flowId);
    if (buffered) {
      const frames = buffered.filter((e) => !types || e.type === undefined || types.has(e.type)).map((e) => e.frame);
      return { kind: "memory", from: decoded.ok, frames };
    }
    return { kind: "mongo", from: { token: decoded.ok } };
  }

  async *#frames(queue: SubscriberQueue, backlog: AsyncGenerator<string>, signal: AbortSignal): AsyncGenerator<string> {
    yield* backlog;
    if (signal.aborted || queue.closed) return;
    for (;;) {
      const chunk = await queue.next(signal);
      if (chunk === null) return;
      yield chunk;
    }
  }

  async *#beforeLive(
    flowId: string,
    queue: SubscriberQueue,
    backlog: Backlog,
    until: string | undefined,
    first: string | undefined,
    types: ReadonlySet<string> | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<string> {
    const { logger } = this.#o;
    // A client may be ahead of this instance's live position (it came from a faster one):
    // then nothing up to its own cursor may be sent again.
    const from = backlog.kind === "memory" ? backlog.from._data : backlog.kind === "mongo" && "token" in backlog.from ? backlog.from.token._data : undefined;
    let release = laterToken(from, until);
    if (first !== undefined) yield first;
    if (backlog.kind === "none") {
      if (until !== undefined) yield idOnly(encodeCursor(until, this.#o.scope));
    } else if (backlog.kind === "reset") {
      yield this.#reset(flowId, backlog.reason, until);
    } else if (backlog.kind === "memory") {
      this.counters.replayedFromMemory++;
      // In chunks of up to ~64 KB: a 10,000-event replay is a few hundred socket writes, not 10,000.
      let chunk = "";
      for (const frame of backlog.frames) {
        chunk += frame;
        if (chunk.length >= 65_536) {
          yield chunk;
          chunk = "";
        }
      }
      if (chunk !== "") yield chunk;
    } else if (backlog.kind === "mongo") {
      this.counters.replayedFromMongo++;
      const outcome = yield* this.#catchUp(flowId, backlog.from, until, types, signal);
      if (typeof outcome === "object") {
        // The catch-up may have ended past `until` (a snapshot newer than the live position).
        release = laterToken(release, outcome.position);
      } else {
        // The reset's id is the live position now, so release past it.
        release = this.#o.position()?._data ?? until;
        yield this.#reset(flowId, outcome, release);
      }
    }
    if (signal.aborted || queue.closed) return;
    queue.release(release);
    logger.debug({ flowId, cursor: release, backlog: backlog.kind }, "subscriber live");
  }

  async *#catchUp(
    flowId: string,
    from: CatchUpStart,
    until: string | undefined,
    types: ReadonlySet<string> | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<string, { position?: string } | ResetReason> {
    const { limiter, catchUp, feed, logger } = this.#o;
    if (until === undefined || ("token" in from && from.token._data >= until)) return {};
    const releaseSlot = await limiter.acquire(signal).catch(() => undefined);
    if (!releaseSlot) return {}; // aborted while queued: the caller stops anyway
    const changes = catchUp(from, until, flowId, signal);
    try {
      for (;;) {
        const step = await changes.next();
        if (step.done) return { position: step.value };
        // dropDatabase (or the like) ended the history this cursor belongs to: nothing after it can be replayed.
        if (step.value.operationType === "invalidate") return "stream-invalidated";
        const framed = feed.frameOf(step.value);
        if (framed?.flowId === flowId && (!types || types.has(framed.type))) yield framed.frame;
      }
    } catch (err) {
      if (signal.aborted) return {};
      logger.warn({ err, flowId, from }, "catch-up stream failed");
      const reason = restartReason(err);
      if (reason) return reason;
      throw err;
    } finally {
      // Closes the catch-up cursor also when our consumer stopped early (client gone mid catch-up).
      await changes.return(undefined).catch(squashError);
      releaseSlot();
    }
  }

  #reset(flowId: string, reason: ResetReason, at: string | undefined): string {
    this.counters.resets++;
    this.#o.logger.info({ flowId, reason, cursor: at }, "sending RESET");
    return this.#o.feed.resetFrame(flowId, reason, at === undefined ? undefined : { _data: at });
  }
}
