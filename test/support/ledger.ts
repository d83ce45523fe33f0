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
  #sentinels = 0;

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
      await this.#insert(flowId!, `${flowId}-${n}`, n);
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  }

  /**
   * Writes one more document to `flowId` (not counted in `written`) and waits until `c` has it.
   * A flow's events arrive in order, so whatever `c` lacks or got twice before it shows by then:
   * no pause for late events needed.
   */
  async sentinel(c: SseClient, flowId: string, timeoutMs = 30_000): Promise<void> {
    const _id = `${flowId}-sentinel-${++this.#sentinels}`;
    await this.#insert(flowId, _id, 0);
    await c.until((x) => Ledger.received(x).includes(_id), timeoutMs, `the sentinel ${_id}`);
  }

  async #insert(flowId: string, _id: string, n: number): Promise<void> {
    await this.nodes.insertOne({ _id, flowId, n });
    this.expected.get(flowId)!.push(_id);
  }

  /** The document ids a client received (SYNC_CANVAS events), in order. */
  static received(c: SseClient): string[] {
    return c
      .events()
      .filter((e) => e.type === "SYNC_CANVAS")
      .map((e) => e.data.id as string);
  }

  /** Waits for a sentinel on `c`, then checks the exact sequence of `flowId`'s documents (the sentinel included). */
  async exactlyOnce(c: SseClient, flowId: string, { timeoutMs = 30_000 } = {}): Promise<number> {
    await this.sentinel(c, flowId, timeoutMs);
    const want = this.expected.get(flowId)!;
    expect(
      c.events().filter((e) => e.type === "RESET"),
      `RESET for ${flowId}`,
    ).toEqual([]);
    expect(Ledger.received(c), `events of ${flowId}`).toEqual(want);
    return want.length;
  }
}
