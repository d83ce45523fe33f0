/**
 * Fan-out of frames to the subscribers of each flow.
 *
 * - Subscribers are kept per flowId, so publishing to one flow costs nothing
 *   for the others, and a flow's entry disappears with its last subscriber
 *   (the map does not grow with every flow ever seen).
 * - A frame is serialized once by the caller and the SAME string is written to
 *   every subscriber; its UTF-8 size is computed once here, not per subscriber.
 * - Every published frame is also recorded in the replay buffer, whether or not
 *   anyone listens now: the next reconnect may need it.
 * - A subscriber that overflows during a write closes itself; the hub removes
 *   it and counts it as dropped. No subscriber can block or slow the others.
 *
 * The hub knows no HTTP: a subscriber is anything with `write`/`close`/`closed`
 * (in practice a SubscriberQueue owned by one SSE connection).
 */
import type { ReplayBuffer, ReplayEntry } from "./replay-buffer";
import type { CloseReason, Subscriber } from "./subscriber-queue";

export interface FlowHubOptions {
  replay: ReplayBuffer;
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

export class FlowHub {
  readonly replay: ReplayBuffer;
  #flows = new Map<string, Set<Subscriber>>();
  #subscribers = 0;
  #published = 0;
  #delivered = 0;
  #dropped = 0;

  constructor({ replay }: FlowHubOptions) {
    this.replay = replay;
  }

  /** Registers `subscriber` for `flowId`; returns its (idempotent) unsubscribe. */
  subscribe(flowId: string, subscriber: Subscriber): () => void {
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

  /** Records the frame for replay and writes it to every subscriber of `flowId`. */
  publish(flowId: string, frame: string, token: string, type?: string): void {
    this.#published++;
    this.replay.push({ token, flowId, frame, type });
    const set = this.#flows.get(flowId);
    if (set) this.#fanOut(flowId, set, frame, token, type);
  }

  /**
   * Writes one frame per flow to every subscriber (e.g. RESET after history
   * loss). `frameForFlow` is called once per flow with subscribers; returning
   * undefined skips that flow. Broadcast frames are not recorded for replay.
   */
  broadcast(frameForFlow: (flowId: string) => string | undefined): void {
    for (const [flowId, set] of [...this.#flows]) {
      const frame = frameForFlow(flowId);
      if (frame !== undefined) this.#fanOut(flowId, set, frame, undefined, undefined);
    }
  }

  /** The replay entries of `flowId` after `token`, or undefined if the buffer cannot tell. */
  replayAfter(token: string, flowId: string): ReplayEntry[] | undefined {
    return this.replay.after(token, flowId);
  }

  /** Closes and forgets every subscriber (shutdown: each connection then ends its response). */
  closeAll(reason: CloseReason): void {
    const flows = [...this.#flows.values()];
    this.#flows.clear();
    this.#subscribers = 0;
    for (const set of flows) for (const subscriber of set) subscriber.close(reason);
  }

  subscriberCount(flowId?: string): number {
    return flowId === undefined ? this.#subscribers : (this.#flows.get(flowId)?.size ?? 0);
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

  #fanOut(flowId: string, set: Set<Subscriber>, frame: string, token: string | undefined, type: string | undefined): void {
    const bytes = Buffer.byteLength(frame);
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
        this.#delivered++;
      }
    }
  }

  #remove(flowId: string, subscriber: Subscriber): void {
    const set = this.#flows.get(flowId);
    if (!set || !set.delete(subscriber)) return;
    this.#subscribers--;
    if (set.size === 0) this.#flows.delete(flowId);
  }
}
