/**
 * Change documents in, frames out: map (events/), serialize ONCE into an SSE
 * frame, publish on the hub. Also the single place that turns a stream restart
 * into RESET frames. The watcher calls `handle` for every change; catch-up
 * streams call `frameOf` so that replayed events are byte-identical to live ones.
 */
import type { ChangeStreamDocument } from "mongodb";
import type { Logger } from "pino";
import { encodeCursor } from "../events/cursor";
import { mapChange, type SkippedChange, type SkipReason } from "../events/map-change";
import type { Rule } from "../events/rule";
import type { ResetReason } from "../events/schemas";
import { formatEvent } from "../events/sse-frame";
import type { ResumeToken } from "../token";
import type { FlowHub } from "./flow-hub";
import type { FlowIdCache } from "./flow-id-cache";
import type { ReplayEntry } from "./replay-buffer";

export interface FeedCounters {
  received: number;
  published: number;
  skipped: Partial<Record<SkipReason, number>>;
  resets: number;
}

export interface ChangeFeedOptions {
  rules: ReadonlyMap<string, Rule>;
  hub: FlowHub;
  ids: FlowIdCache;
  /** Cursor scope of this deployment + database (events/cursor.ts). */
  scope: string;
  logger: Logger;
}

export class ChangeFeed {
  readonly counters: FeedCounters = { received: 0, published: 0, skipped: {}, resets: 0 };
  readonly #o: ChangeFeedOptions;

  constructor(options: ChangeFeedOptions) {
    this.#o = options;
  }

  /** The hot path: one change from the watcher. Never throws. */
  handle(change: ChangeStreamDocument): void {
    this.counters.received++;
    const result = this.#map(change);
    if ("skip" in result) {
      const { logger } = this.#o;
      this.counters.skipped[result.skip] = (this.counters.skipped[result.skip] ?? 0) + 1;
      if (result.skip === "lifecycle") logger.info({ token: result.token, detail: result.detail }, "change stream lifecycle event");
      else logger.warn({ reason: result.skip, detail: result.detail, token: result.token }, "change skipped");
      return;
    }
    const { ids, hub } = this.#o;
    // Kept after a delete too: a catch-up stream replaying that delete later must still route it.
    // The cache is bounded, so deleted ids age out like any other.
    ids.set(result.collection, result.id, result.flowId);
    hub.publish(result.entry);
    this.counters.published++;
  }

  /**
   * The frame of a change, exactly as live subscribers got it (for catch-up
   * streams); undefined if it was skipped (already logged and counted live).
   */
  frameOf(change: ChangeStreamDocument): ReplayEntry | undefined {
    const result = this.#map(change);
    return "skip" in result ? undefined : result.entry;
  }

  #map(change: ChangeStreamDocument): { entry: ReplayEntry; flowId: string; id: string; collection: string } | SkippedChange {
    const { rules, ids, scope } = this.#o;
    const result = mapChange(change, rules, (id, collection) => ids.get(collection, id));
    if ("skip" in result) return result;
    const { event, flowId, token, collection } = result;
    // Serialized once here; every subscriber of the flow gets this same string.
    const frame = formatEvent({ id: encodeCursor(token, scope), event: event.type, data: JSON.stringify(event.data) });
    return { entry: { flowId, token, type: event.type, frame }, flowId, id: event.data.id, collection };
  }

  /** The RESET frame for one flow; its id (when the token is known) is where the client continues from. */
  resetFrame(flowId: string, reason: ResetReason, token: string | undefined): string {
    const id = token === undefined ? undefined : encodeCursor(token, this.#o.scope);
    return formatEvent({ id, event: "RESET", data: JSON.stringify({ flowId, reason }) });
  }

  /** The stream restarted elsewhere than right after its last change: every subscriber must refetch. */
  restarted(reason: ResetReason, position: ResumeToken | undefined): void {
    const { hub, logger } = this.#o;
    this.counters.resets++;
    hub.replay.reset(position?._data);
    logger.warn({ reason, token: position?._data, subscribers: hub.subscriberCount() }, "change stream restarted: sending RESET to every subscriber");
    hub.broadcast((flowId) => this.resetFrame(flowId, reason, position?._data));
  }
}
