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
import { decodeCursor, type ResumeToken } from "../events/cursor";
import type { ResetReason } from "../events/schemas";
import type { ChangeFeed } from "./change-feed";
import type { FlowHub } from "./flow-hub";
import type { Limiter } from "./limiter";
import { SubscriberQueue } from "./subscriber-queue";

/** Reads the changes after `from` up to `until` (inclusive); see watch/catch-up.ts. */
export type CatchUp = (from: ResumeToken, until: string, flowId: string, signal: AbortSignal) => AsyncIterable<ChangeStreamDocument>;

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
  /** Unsubscribes and closes the queue (idempotent). */
  close(): void;
}

type Backlog =
  | { kind: "none" }
  | { kind: "reset"; reason: ResetReason }
  | { kind: "memory"; from: ResumeToken; frames: string[] }
  | { kind: "mongo"; from: ResumeToken };

export class Subscriptions {
  readonly counters: SubscriptionCounters = { opened: 0, replayedFromMemory: 0, replayedFromMongo: 0, resets: 0 };
  readonly #o: SubscriptionsOptions;

  constructor(options: SubscriptionsOptions) {
    this.#o = options;
  }

  /** `lastEventId`: the client's cursor, if it sent one (header wins over query: the caller decides). */
  open(flowId: string, lastEventId: string | undefined): Subscription {
    const { hub, position, maxBytes } = this.#o;
    this.counters.opened++;
    const backlog = this.#backlog(flowId, lastEventId);
    const queue = new SubscriberQueue({ maxBytes, paused: backlog.kind !== "none" });
    // Synchronously with the backlog decision: no change can be published in between.
    const until = position()?._data;
    const unsubscribe = hub.subscribe(flowId, queue);
    const close = () => {
      unsubscribe();
      queue.close("client-gone");
    };
    return { flowId, queue, close, frames: (signal) => this.#frames(flowId, queue, backlog, until, signal) };
  }

  #backlog(flowId: string, lastEventId: string | undefined): Backlog {
    if (lastEventId === undefined) return { kind: "none" };
    const decoded = decodeCursor(lastEventId, this.#o.scope);
    if ("error" in decoded) return { kind: "reset", reason: decoded.error === "foreign" ? "cursor-foreign" : "cursor-malformed" };
    const buffered = this.#o.hub.replayAfter(decoded.ok._data, flowId);
    if (buffered) return { kind: "memory", from: decoded.ok, frames: buffered.map((e) => e.frame) };
    return { kind: "mongo", from: decoded.ok };
  }

  async *#frames(flowId: string, queue: SubscriberQueue, backlog: Backlog, until: string | undefined, signal: AbortSignal): AsyncGenerator<string> {
    const { logger } = this.#o;
    // A client may be ahead of this instance's live position (it came from a faster one):
    // then nothing up to its own cursor may be sent again.
    const from = backlog.kind === "memory" || backlog.kind === "mongo" ? backlog.from._data : undefined;
    let release = from !== undefined && (until === undefined || from > until) ? from : until;
    if (backlog.kind === "reset") {
      yield this.#reset(flowId, backlog.reason, until);
    } else if (backlog.kind === "memory") {
      this.counters.replayedFromMemory++;
      for (const frame of backlog.frames) yield frame;
    } else if (backlog.kind === "mongo") {
      this.counters.replayedFromMongo++;
      const outcome = yield* this.#catchUp(flowId, backlog.from, until, signal);
      if (outcome !== "done") {
        // The reset's id is the live position now, so release past it.
        release = this.#o.position()?._data ?? until;
        yield this.#reset(flowId, outcome, release);
      }
    }
    if (signal.aborted || queue.closed) return;
    queue.release(release);
    logger.debug({ flowId, cursor: release, backlog: backlog.kind }, "subscriber live");
    for (;;) {
      const chunk = await queue.next(signal);
      if (chunk === null) return;
      yield chunk;
    }
  }

  async *#catchUp(flowId: string, from: ResumeToken, until: string | undefined, signal: AbortSignal): AsyncGenerator<string, "done" | ResetReason> {
    const { limiter, catchUp, feed, logger } = this.#o;
    if (until === undefined || from._data >= until) return "done";
    const releaseSlot = await limiter.acquire(signal).catch(() => undefined);
    if (!releaseSlot) return "done"; // aborted while queued: the caller stops anyway
    try {
      for await (const change of catchUp(from, until, flowId, signal)) {
        const framed = feed.frameOf(change);
        if (framed?.flowId === flowId) yield framed.frame;
      }
      return "done";
    } catch (err) {
      if (signal.aborted) return "done";
      const code = (err as { code?: number }).code;
      logger.warn({ err, flowId, cursor: from._data }, "catch-up stream failed");
      if (code === 286) return "history-lost";
      if (code === 280) return "cursor-unknown";
      throw err;
    } finally {
      releaseSlot();
    }
  }

  #reset(flowId: string, reason: ResetReason, at: string | undefined): string {
    this.counters.resets++;
    this.#o.logger.info({ flowId, reason, cursor: at }, "sending RESET");
    return this.#o.feed.resetFrame(flowId, reason, at === undefined ? undefined : { _data: at });
  }
}
