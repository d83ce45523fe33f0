/**
 * Change documents in, frames out: map (events/), serialize ONCE into an SSE
 * frame, publish on the hub. Also the single place that turns a stream restart
 * into RESET frames. The watcher calls `handle` for every change; catch-up
 * streams call `replayOf` so that replayed events are byte-identical to live ones.
 */
import type { ChangeStreamDocument } from "mongodb";
import type { Logger } from "pino";
import { encodeCursor } from "../events/cursor";
import { INEXACT_DERIVATIONS, type Derivation, type ElementSkipReason } from "../events/elements";
import { mapChanges, type SkipReason } from "../events/map-change";
import type { Rule } from "../events/rule";
import type { ResetReason } from "../events/schemas";
import { formatEvent } from "../events/sse-frame";
import { subPosition, type ResumeToken } from "../token";
import type { FlowHub } from "./flow-hub";
import type { FlowIdCache } from "./flow-id-cache";
import type { ReplayEntry } from "./replay-buffer";

export interface FeedCounters {
  received: number;
  published: number;
  skipped: Partial<Record<SkipReason, number>>;
  resets: number;
  /** Embedded-entity elements left out of a change that otherwise flowed, by reason. */
  elementsSkipped: Partial<Record<ElementSkipReason, number>>;
  /** How embedded-entity events were derived, per change and kind (events/elements.ts). */
  derivations: Partial<Record<Derivation, number>>;
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
  readonly counters: FeedCounters = { received: 0, published: 0, skipped: {}, resets: 0, elementsSkipped: {}, derivations: {} };
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
    const { ids, hub, logger } = this.#o;
    // Kept after a delete too: a catch-up stream replaying that delete later must still route it.
    // The cache is bounded, so deleted ids age out like any other.
    ids.set(result.collection, result.id, result.flowId);
    for (const how of result.derivations) this.counters.derivations[how] = (this.counters.derivations[how] ?? 0) + 1;
    for (const { reason, detail } of result.skips) {
      this.counters.elementsSkipped[reason] = (this.counters.elementsSkipped[reason] ?? 0) + 1;
      logger.warn({ reason, detail, token: result.token, collection: result.collection }, "element skipped");
    }
    for (const entry of result.entries) hub.publish(entry);
    this.counters.published += result.entries.length;
  }

  /**
   * The frames of a change, exactly as live subscribers got them (for catch-up streams; empty if it
   * was skipped: already logged and counted live), and whether deriving them again gives the same
   * events: not when a kind of an embedded-entity change was read from the later `updateLookup`
   * document (elements.ts).
   */
  replayOf(change: ChangeStreamDocument): { entries: readonly ReplayEntry[]; repeatable: boolean } {
    const result = this.#map(change);
    if ("skip" in result) return { entries: [], repeatable: true };
    return { entries: result.entries, repeatable: !result.derivations.some((how) => INEXACT_DERIVATIONS.has(how)) };
  }

  #map(change: ChangeStreamDocument) {
    const { rules, ids, scope } = this.#o;
    const result = mapChanges(change, rules, (id, collection) => ids.get(collection, id));
    if ("skip" in result) return result;
    const { events, flowId, token, clusterTime } = result;
    // One change, several events (embedded entities): each but the last at a sub-position of the
    // change, the last at its token, so that "after the token" still means "after the whole change".
    const entries = events.map((event, index): ReplayEntry => {
      const position = index === events.length - 1 ? token : subPosition(token, index, clusterTime);
      // Serialized once here; every subscriber of the flow gets this same string.
      const frame = formatEvent({ id: encodeCursor(position, scope), event: event.type, data: JSON.stringify(event.data) });
      return { flowId, token: position, type: event.type, frame };
    });
    return { ...result, entries };
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
