/**
 * Fan-out of frames to the subscribers of each flow.
 *
 * - Subscribers are kept per flowId, so publishing to one flow costs nothing
 *   for the others, and a flow's entry disappears with its last subscriber
 *   (the map does not grow with every flow ever seen).
 * - A frame is serialized once by the caller. The frames a flow publishes before
 *   the next check phase form one batch, encoded to ONE Buffer there and written
 *   to every subscriber of the flow as that same Buffer (`writeBatch`): one
 *   entry per subscriber per batch, however many frames it holds, so a burst of
 *   100 events to 10,000 subscribers costs 10,000 queue writes, not a million,
 *   and memory grows with the backlog, not with subscribers × backlog. A
 *   subscriber that wants only some of the frames (`?types=`, paused for its
 *   backlog, or inside it) gets them one by one, as the frame strings the replay
 *   buffer holds anyway: what it keeps is exactly what it counts against its limit.
 * - The fan-out runs ahead of the queues' wake-ups (`Schedule.first`): in a long
 *   sweep cut into slices, subscribers not reached yet find a new batch already
 *   queued behind the earlier one and write both at once. Everything that
 *   writes to a flow's subscribers directly (a new subscriber, PRESENCE, RESET)
 *   fans out that flow's pending batch first, so the order of frames holds.
 * - Every published frame is also recorded in the replay buffer, whether or not
 *   anyone listens now: the next reconnect may need it.
 * - A subscriber that overflows during a write closes itself; the hub removes
 *   it and counts it as dropped. No subscriber can block or slow the others.
 *
 * The hub knows no HTTP: a subscriber is anything with `write`/`close`/`closed`
 * (in practice a SubscriberQueue owned by one SSE connection).
 */
import type { ReplayBuffer, ReplayEntry } from "./replay-buffer";
import { checkPhaseScheduler, type CloseReason, type Schedule, type Subscriber } from "./subscriber-queue";

/** A batch stops growing at this many frames (a long burst is then several shared batches). */
const BATCH_MAX_FRAMES = 512;

/** The frames a flow published since its last fan-out, in order. */
interface PendingBatch {
  frames: string[];
  tokens: string[];
  types: (string | undefined)[];
}

export interface FlowHubOptions {
  replay: ReplayBuffer;
  /** How the hub's subscriber queues defer their wake-ups; default one `checkPhaseScheduler()` per hub. */
  schedule?: Schedule;
  /** Wall clock in ms, for `FlowInfo.lastEventAt` (test seam); default `Date.now`. */
  now?: () => number;
}

export interface HubStats {
  /** Flows with at least one subscriber. */
  flows: number;
  subscribers: number;
  /** Frames published (events), all flows. */
  published: number;
  /** Frames written to subscribers, all flows (published × audience, plus broadcasts). */
  delivered: number;
  /** Subscribers closed because they fell too far behind. */
  dropped: number;
}

/** One flow with subscribers on this instance, as `flows()` reports it (the inspector's list). */
export interface FlowInfo {
  flowId: string;
  subscribers: number;
  /** The token of the flow's last event published while it had subscribers here; undefined if none yet. */
  lastToken?: string;
  /** When that event arrived (ms since the epoch, this instance's clock). */
  lastEventAt?: number;
}

/** Per event type: frames published, and live frames written to subscribers. */
export interface TypeCounts {
  published: number;
  delivered: number;
}

export class FlowHub {
  readonly replay: ReplayBuffer;
  /** Shared by every subscriber queue of this hub (subscriptions.ts passes it on). */
  readonly schedule: Schedule;
  #flows = new Map<string, Set<Subscriber>>();
  // Kept only for flows in #flows, and removed with them: bounded by the flows with subscribers.
  #lastEvent = new Map<string, { token: string; at: number }>();
  readonly #now: () => number;
  #subscribers = 0;
  #published = 0;
  #delivered = 0;
  #dropped = 0;
  // One entry per event type, made on first use: counting is then a field increment.
  #byType = new Map<string, TypeCounts>();
  // Flows with frames not yet fanned out; emptied by #fanOutPending, ahead of the queues' wake-ups.
  #pending = new Map<string, PendingBatch>();
  #fanOutScheduled = false;
  readonly #first: (fn: () => void) => void;
  readonly #fanOutPending = (): void => {
    this.#fanOutScheduled = false;
    this.flush();
  };

  constructor({ replay, schedule = checkPhaseScheduler(), now = Date.now }: FlowHubOptions) {
    this.replay = replay;
    this.schedule = schedule;
    this.#first = schedule.first ?? schedule;
    this.#now = now;
  }

  /** Registers `subscriber` for `flowId`; returns its (idempotent) unsubscribe. */
  subscribe(flowId: string, subscriber: Subscriber): () => void {
    // It gets what is published from now on, not a pending batch of frames published before it came.
    this.#fanOut(flowId);
    let set = this.#flows.get(flowId);
    if (!set) {
      set = new Set();
      this.#flows.set(flowId, set);
    }
    if (!set.has(subscriber)) {
      set.add(subscriber);
      this.#subscribers++;
    }
    return () => this.#remove(flowId, subscriber);
  }

  /** Records the event's frame for replay and writes it to every subscriber of its flow. */
  publish(entry: ReplayEntry): void {
    const { flowId, frame, token, type } = entry;
    this.#published++;
    const counts = this.#countsOf(type ?? "unknown");
    counts.published++;
    this.replay.push(entry);
    const set = this.#flows.get(flowId);
    if (set) {
      // Updated in place: no allocation per event once the flow has an entry.
      const last = this.#lastEvent.get(flowId);
      if (last) {
        last.token = token;
        last.at = this.#now();
      } else {
        this.#lastEvent.set(flowId, { token, at: this.#now() });
      }
      let batch = this.#pending.get(flowId);
      if (batch === undefined) {
        batch = { frames: [], tokens: [], types: [] };
        this.#pending.set(flowId, batch);
        if (!this.#fanOutScheduled) {
          this.#fanOutScheduled = true;
          this.#first(this.#fanOutPending);
        }
      }
      batch.frames.push(frame);
      batch.tokens.push(token);
      batch.types.push(type);
      if (batch.frames.length >= BATCH_MAX_FRAMES) this.#fanOut(flowId);
    }
  }

  /** Writes every pending batch to its subscribers now (the hub does this itself in the next check phase). */
  flush(): void {
    for (const flowId of this.#pending.keys()) this.#fanOut(flowId);
  }

  /**
   * Writes one frame per flow to every subscriber (e.g. RESET after history
   * loss). `frameForFlow` is called once per flow with subscribers; returning
   * undefined skips that flow. Broadcast frames are not recorded for replay,
   * and reach every subscriber whatever types it asked for; `type` only names
   * them in `typeCounts()`.
   */
  broadcast(frameForFlow: (flowId: string) => string | undefined, type = "RESET"): void {
    const counts = this.#countsOf(type);
    this.flush();
    for (const [flowId, set] of [...this.#flows]) {
      const frame = frameForFlow(flowId);
      if (frame !== undefined) counts.delivered += this.#writeEach(flowId, set, frame, undefined, undefined);
    }
  }

  /**
   * Writes a frame of state (not history: PRESENCE) to the subscribers of one flow. Not recorded
   * for replay and without a token, so it never moves a subscriber's cursor; `type` lets a
   * subscriber's `?types=` leave it out, and counts it in `typeCounts()`.
   */
  send(flowId: string, frame: string, type: string): void {
    this.#fanOut(flowId);
    const set = this.#flows.get(flowId);
    if (set) this.#countsOf(type).delivered += this.#writeEach(flowId, set, frame, undefined, type);
  }

  /** The replay entries of `flowId` after `token`, or undefined if the buffer cannot tell. */
  replayAfter(token: string, flowId: string): ReplayEntry[] | undefined {
    return this.replay.after(token, flowId);
  }

  /** Closes and forgets every subscriber (shutdown: each connection then ends its response). */
  closeAll(reason: CloseReason): void {
    const flows = [...this.#flows.values()];
    this.#flows.clear();
    this.#lastEvent.clear();
    this.#pending.clear();
    this.#subscribers = 0;
    for (const set of flows) for (const subscriber of set) subscriber.close(reason);
  }

  subscriberCount(flowId?: string): number {
    return flowId === undefined ? this.#subscribers : (this.#flows.get(flowId)?.size ?? 0);
  }

  /** The flows with subscribers now, in no particular order (a copy: read-only for the caller). */
  flows(): FlowInfo[] {
    const list: FlowInfo[] = [];
    for (const [flowId, set] of this.#flows) {
      const last = this.#lastEvent.get(flowId);
      list.push(last ? { flowId, subscribers: set.size, lastToken: last.token, lastEventAt: last.at } : { flowId, subscribers: set.size });
    }
    return list;
  }

  get stats(): HubStats {
    return {
      flows: this.#flows.size,
      subscribers: this.#subscribers,
      published: this.#published,
      delivered: this.#delivered,
      dropped: this.#dropped,
    };
  }

  /** Counts per event type since start (for metrics; read, do not modify). */
  typeCounts(): ReadonlyMap<string, Readonly<TypeCounts>> {
    return this.#byType;
  }

  #countsOf(type: string): TypeCounts {
    let counts = this.#byType.get(type);
    if (!counts) {
      counts = { published: 0, delivered: 0 };
      this.#byType.set(type, counts);
    }
    return counts;
  }

  /**
   * Writes the flow's pending batch to its subscribers: as one Buffer to each that takes it whole, frame
   * by frame to the others.
   */
  #fanOut(flowId: string): void {
    const batch = this.#pending.get(flowId);
    if (batch === undefined) return;
    this.#pending.delete(flowId);
    const set = this.#flows.get(flowId);
    if (set === undefined) return;
    const { frames, tokens, types } = batch;
    const count = frames.length;
    const joined = Buffer.from(count === 1 ? frames[0]! : frames.join(""));
    const firstToken = tokens[0]!;
    const lastToken = tokens[count - 1]!;
    let whole = 0;
    let sizes: number[] | undefined;
    let took: number[] | undefined;
    for (const subscriber of set) {
      if (subscriber.closed) {
        this.#remove(flowId, subscriber);
        continue;
      }
      if (subscriber.writeBatch?.(joined, count, firstToken, lastToken)) {
        if (subscriber.closed) {
          this.#dropped++;
          this.#remove(flowId, subscriber);
        } else {
          whole++;
        }
        continue;
      }
      sizes ??= frames.map((frame) => Buffer.byteLength(frame));
      took ??= new Array<number>(count).fill(0);
      for (let i = 0; i < count; i++) {
        // The frame's own string (the replay buffer holds it already), not a slice of the batch: a slice
        // would keep the whole batch alive for a subscriber that holds a few of its frames, unbounded by its limit.
        subscriber.write(frames[i]!, tokens[i], sizes[i], types[i]);
        if (subscriber.closed) {
          this.#dropped++;
          this.#remove(flowId, subscriber);
          break;
        }
        took[i]!++;
      }
    }
    let delivered = 0;
    for (let i = 0; i < count; i++) {
      const n = whole + (took?.[i] ?? 0);
      this.#countsOf(types[i] ?? "unknown").delivered += n;
      delivered += n;
    }
    this.#delivered += delivered;
  }

  /** Writes one frame to each open subscriber of the set; returns how many took it. */
  #writeEach(flowId: string, set: Set<Subscriber>, frame: string, token: string | undefined, type: string | undefined): number {
    const bytes = Buffer.byteLength(frame);
    let delivered = 0;
    // Deleting the current element while iterating a Set is safe in JS.
    for (const subscriber of set) {
      if (subscriber.closed) {
        this.#remove(flowId, subscriber);
        continue;
      }
      subscriber.write(frame, token, bytes, type);
      if (subscriber.closed) {
        this.#dropped++;
        this.#remove(flowId, subscriber);
      } else {
        delivered++;
      }
    }
    this.#delivered += delivered;
    return delivered;
  }

  #remove(flowId: string, subscriber: Subscriber): void {
    const set = this.#flows.get(flowId);
    if (!set || !set.delete(subscriber)) return;
    this.#subscribers--;
    if (set.size === 0) {
      this.#flows.delete(flowId);
      this.#lastEvent.delete(flowId);
      this.#pending.delete(flowId);
    }
  }
}
