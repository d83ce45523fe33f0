/**
 * Exactly-once bookkeeping for fault tests: a writer that inserts numbered
 * documents round-robin over some flows (with an independent MongoClient, as any
 * outside writer would), and the check that a subscriber of a flow received
 * exactly that flow's documents, in order, each once, and no RESET.
 */
import type { Collection } from "mongodb";
import { expect } from "vitest";
import type { SseClient } from "./sse-client";

export class Ledger {
  readonly expected: Map<string, string[]>;
  #n = 0;

  constructor(
    readonly nodes: Collection<{ _id: string; flowId: string; n: number }>,
    readonly flows: readonly string[],
  ) {
    this.expected = new Map(flows.map((f) => [f, []]));
  }

  get written(): number {
    return this.#n;
  }

  /** Inserts `count` documents, one flow after the other; `pauseMs` between writes. */
  async write(count: number, pauseMs = 0): Promise<void> {
    for (let k = 0; k < count; k++) {
      const n = ++this.#n;
      const flowId = this.flows[n % this.flows.length];
      const _id = `${flowId}-${n}`;
      await this.nodes.insertOne({ _id, flowId, n });
      this.expected.get(flowId)!.push(_id);
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  }

  /** The document ids a client received (SYNC_CANVAS events), in order. */
  static received(c: SseClient): string[] {
    return c.events().filter((e) => e.type === "SYNC_CANVAS").map((e) => e.data.id as string);
  }

  /** Waits until `c` has all of `flowId`'s documents, lingers for late duplicates, then checks the exact sequence. */
  async exactlyOnce(c: SseClient, flowId: string, { lingerMs = 300, timeoutMs = 30_000 } = {}): Promise<number> {
    const want = this.expected.get(flowId)!;
    await c.until((x) => Ledger.received(x).length >= want.length, timeoutMs, `${want.length} events of ${flowId}`);
    await new Promise((r) => setTimeout(r, lingerMs));
    expect(c.events().filter((e) => e.type === "RESET"), `RESET for ${flowId}`).toEqual([]);
    expect(Ledger.received(c), `events of ${flowId}`).toEqual(want);
    return want.length;
  }
}
