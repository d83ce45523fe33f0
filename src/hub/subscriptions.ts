/**
 * Opening a subscription: what a (re)connecting client receives, in order.
 *
 *   no cursor                    → live events
 *   cursor in the replay buffer  → the flow's buffered events after it, then live
 *   cursor older than the buffer → a catch-up change stream from it, then live
 *   malformed / foreign / unknown / too old → RESET (id = the live token), then live
 *
 * Words: the *backlog* is everything a subscriber gets before live (the first
 * frame, a RESET, or a replay from memory or MongoDB); how it resumes is its
 * `Resume` plan. No gap, no duplicate: the subscriber's queue is registered on the
 * hub, paused, BEFORE the backlog is read; the backlog ends at the live token
 * (the watcher's position) taken at that moment; `queue.release(backlogEnd)` then
 * drops any live frame at or before it.
 */
import type { ChangeStreamDocument } from "mongodb";
import type { Logger } from "pino";
import { FlowsyncError, restartReason, squashError } from "../errors";
import { decodeCursor, encodeCursor } from "../events/cursor";
import type { ResetReason } from "../events/schemas";
import { idOnly } from "../events/sse-frame";
import { comparePositions, laterToken, type ResumeToken } from "../token";
import type { CatchUpStart } from "../watch/catch-up";
import type { ChangeFeed } from "./change-feed";
import type { FlowHub } from "./flow-hub";
import type { Limiter } from "./limiter";
import { SubscriberQueue, type CloseReason } from "./subscriber-queue";

/**
 * Reads the changes after `from` up to `lastToken` (inclusive), in batches of those that arrived together, and
 * returns the token it ended at; see watch/catch-up.ts.
 */
export type CatchUp = (
  from: CatchUpStart,
  lastToken: string,
  flowId: string,
  signal: AbortSignal,
) => AsyncGenerator<readonly ChangeStreamDocument[], string | undefined>;

/** A replay leaves in chunks of about this many characters: a 10,000-event replay is a few hundred socket writes, not 10,000. */
const CHUNK_CHARS = 65_536;

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
  /**
   * The backlog: what comes before live (the first frame, a RESET, or the replay).
   * When it is done the queue is released, and the caller takes live frames from
   * `queue` itself (`take()` / `onReadable()`), which costs no promise per frame.
   */
  backlog(signal: AbortSignal): AsyncGenerator<string>;
  /** Unsubscribes and closes the queue (idempotent). */
  close(): void;
}

/** What a subscription's backlog is made of; dropped once the backlog starts (a replay's frames with it). */
interface BacklogPlan {
  resume: Resume;
  liveToken: string | undefined;
  first: string | undefined;
  types: ReadonlySet<string> | undefined;
}

/** A subscription as the connection holds it while it is open: its queue and its way off the hub. */
class OpenSubscription implements Subscription {
  readonly flowId: string;
  readonly queue: SubscriberQueue;
  readonly #unsubscribe: () => void;
  #plan: BacklogPlan | undefined;
  readonly #read: (sub: Subscription, plan: BacklogPlan, signal: AbortSignal) => AsyncGenerator<string>;

  constructor(
    flowId: string,
    queue: SubscriberQueue,
    unsubscribe: () => void,
    plan: BacklogPlan,
    read: (sub: Subscription, plan: BacklogPlan, signal: AbortSignal) => AsyncGenerator<string>,
  ) {
    this.flowId = flowId;
    this.queue = queue;
    this.#unsubscribe = unsubscribe;
    this.#plan = plan;
    this.#read = read;
  }

  backlog(signal: AbortSignal): AsyncGenerator<string> {
    const plan = this.#plan;
    if (plan === undefined) throw new FlowsyncError("E_INTERNAL", "a subscription's backlog is read once");
    this.#plan = undefined;
    return this.#read(this, plan, signal);
  }

  close(): void {
    this.#unsubscribe();
    this.queue.close("client-gone");
  }
}

/** How a subscription resumes: from nothing, with a RESET, from the replay buffer, or from MongoDB. */
type Resume =
  | { kind: "none" }
  | { kind: "reset"; reason: ResetReason }
  | { kind: "memory"; from: string; frames: string[] }
  | { kind: "mongo"; from: CatchUpStart; position?: string };

export class Subscriptions {
  readonly counters: SubscriptionCounters = { opened: 0, replayedFromMemory: 0, replayedFromMongo: 0, resets: 0 };
  readonly #o: SubscriptionsOptions;

  constructor(options: SubscriptionsOptions) {
    this.#o = options;
  }

  open(flowId: string, { lastEventId, types, first, onClose }: OpenOptions = {}): Subscription {
    const { hub, position, maxBytes } = this.#o;
    this.counters.opened++;
    const resume = this.#resume(flowId, lastEventId, types);
    const queue = new SubscriberQueue({ maxBytes, paused: resume.kind !== "none" || first !== undefined, types, onClose, schedule: hub.schedule });
    // Synchronously with the resume decision: no change can be published in between.
    const liveToken = position()?._data;
    const unsubscribe = hub.subscribe(flowId, queue);
    return new OpenSubscription(flowId, queue, unsubscribe, { resume, liveToken, first, types }, this.#readBacklog);
  }

  // One function for all subscriptions (not a closure each): a subscription lives as long as its connection.
  readonly #readBacklog = (sub: Subscription, plan: BacklogPlan, signal: AbortSignal): AsyncGenerator<string> =>
    this.#backlog(sub.flowId, sub.queue, plan.resume, plan.liveToken, plan.first, plan.types, signal);

  #resume(flowId: string, lastEventId: string | undefined, types: ReadonlySet<string> | undefined): Resume {
    if (lastEventId === undefined) return { kind: "none" };
    const decoded = decodeCursor(lastEventId, this.#o.scope);
    if ("error" in decoded) return { kind: "reset", reason: decoded.error === "foreign" ? "cursor-foreign" : "cursor-malformed" };
    // A snapshot's time cursor has no token to look up in memory: it always catches up from MongoDB.
    if (!("ok" in decoded)) return { kind: "mongo", from: { time: decoded.time } };
    const buffered = this.#o.hub.replayAfter(decoded.position, flowId);
    if (buffered) {
      const frames = buffered.filter((e) => !types || e.type === undefined || types.has(e.type)).map((e) => e.frame);
      return { kind: "memory", from: decoded.position, frames };
    }
    // Inside a change (one of several events of an embedded-entity document): the change itself
    // must be read again, so the catch-up starts at its cluster time and drops what precedes the cursor.
    if (decoded.within) return { kind: "mongo", from: { within: { token: decoded.ok, time: decoded.within.time } }, position: decoded.position };
    return { kind: "mongo", from: { token: decoded.ok }, position: decoded.position };
  }

  async *#backlog(
    flowId: string,
    queue: SubscriberQueue,
    resume: Resume,
    liveToken: string | undefined,
    first: string | undefined,
    types: ReadonlySet<string> | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<string> {
    const { logger } = this.#o;
    // A client may be ahead of this instance's live token (it came from a faster one):
    // then nothing up to its own token may be sent again.
    const fromToken = resume.kind === "memory" ? resume.from : resume.kind === "mongo" ? resume.position : undefined;
    let backlogEnd = laterToken(fromToken, liveToken);
    if (first !== undefined) yield first;
    if (resume.kind === "none") {
      if (liveToken !== undefined) yield idOnly(encodeCursor(liveToken, this.#o.scope));
    } else if (resume.kind === "reset") {
      yield this.#reset(flowId, resume.reason, liveToken);
    } else if (resume.kind === "memory") {
      this.counters.replayedFromMemory++;
      let chunk = "";
      for (const frame of resume.frames) {
        chunk += frame;
        if (chunk.length >= CHUNK_CHARS) {
          yield chunk;
          chunk = "";
        }
      }
      if (chunk !== "") yield chunk;
    } else if (resume.kind === "mongo") {
      this.counters.replayedFromMongo++;
      const outcome = yield* this.#catchUp(flowId, resume.from, resume.position, liveToken, types, signal);
      if (typeof outcome === "object") {
        // The catch-up may have ended past the live token (a snapshot newer than the live position).
        backlogEnd = laterToken(backlogEnd, outcome.endToken);
      } else {
        // The reset's id is the live token now, so the backlog ends there.
        backlogEnd = this.#o.position()?._data ?? liveToken;
        yield this.#reset(flowId, outcome, backlogEnd);
      }
    }
    if (signal.aborted || queue.closed) return;
    queue.release(backlogEnd);
    logger.debug({ flowId, token: backlogEnd, resume: resume.kind }, "subscriber live");
  }

  async *#catchUp(
    flowId: string,
    from: CatchUpStart,
    position: string | undefined,
    liveToken: string | undefined,
    types: ReadonlySet<string> | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<string, { endToken?: string } | ResetReason> {
    const { limiter, catchUp, feed, logger } = this.#o;
    if (liveToken === undefined || (position !== undefined && comparePositions(position, liveToken) >= 0)) return {};
    const releaseSlot = await limiter.acquire(signal).catch(() => undefined);
    if (!releaseSlot) return {}; // aborted while queued: the caller stops anyway
    const changes = catchUp(from, liveToken, flowId, signal);
    // The frames of what was read so far, not yet yielded: written as one chunk per batch of changes (or per
    // CHUNK_CHARS), and always before the catch-up ends, however it ends.
    let chunk = "";
    try {
      for (;;) {
        const step = await changes.next();
        if (step.done) {
          if (chunk !== "") yield chunk;
          return { endToken: step.value };
        }
        let outcome: ResetReason | undefined;
        for (const change of step.value) {
          // dropDatabase (or the like) ended the history this cursor belongs to: nothing after it can be replayed.
          if (change.operationType === "invalidate") {
            outcome = "stream-invalidated";
            break;
          }
          const { entries, repeatable } = feed.replayOf(change);
          // A start inside a change re-reads that change: its events up to the cursor were delivered, counted by
          // index. Read again without its pre-image (expired since, or images off), its events may not be the ones
          // delivered: the rest cannot be told exactly, so the subscriber starts over from a snapshot.
          if (position !== undefined && !repeatable && entries.some((e) => comparePositions(e.token, position) === 0)) {
            outcome = "history-lost";
            break;
          }
          for (const entry of entries) {
            if (position !== undefined && comparePositions(entry.token, position) <= 0) continue;
            if (entry.flowId === flowId && (!types || (entry.type !== undefined && types.has(entry.type)))) chunk += entry.frame;
          }
          if (chunk.length >= CHUNK_CHARS) {
            yield chunk;
            chunk = "";
          }
        }
        if (chunk !== "") {
          yield chunk;
          chunk = "";
        }
        if (outcome !== undefined) return outcome;
      }
    } catch (err) {
      if (signal.aborted) return {};
      // What was replayed before the failure still goes out ahead of the RESET (or the failure), as it did frame by frame.
      if (chunk !== "") yield chunk;
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

  #reset(flowId: string, reason: ResetReason, token: string | undefined): string {
    this.counters.resets++;
    this.#o.logger.info({ flowId, reason, token }, "sending RESET");
    return this.#o.feed.resetFrame(flowId, reason, token);
  }
}
