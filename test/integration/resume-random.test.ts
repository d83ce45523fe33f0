/**
 * Randomized: inserts, updates, replaces and deletes across several flows while
 * subscribers disconnect and reconnect at random points with their last id.
 * Every subscriber must end with exactly its flow's sequence of events, in
 * order: nothing lost, nothing repeated. Once with a replay buffer large enough
 * to serve every resume from memory, once with a buffer of 1 (every resume
 * runs a catch-up change stream from MongoDB).
 */
import { describe, expect, it } from "vitest";
import type { Flowsync } from "../../src/flowsync";
import { uniqueDb, useBackend } from "../support/backend";
import { startTestFlowsync, subscribeUrl } from "../support/flowsync";
import { seededRandom, testSeed } from "../support/random";
import { SseClient } from "../support/sse-client";

const FLOWS = ["f0", "f1", "f2"];
const SUBSCRIBERS_PER_FLOW = 2;
const ROUNDS = 120;

const h = useBackend();

/** One logical subscriber: a series of connections, each resuming from the previous one's last id. */
class Resumer {
  received: Array<{ op: string; id: string; seq: unknown }> = [];
  #client: SseClient | undefined;
  #lastId: string | undefined;
  reconnects = 0;
  constructor(
    readonly fs: Flowsync,
    readonly flowId: string,
  ) {}

  async connect(): Promise<void> {
    const c = new SseClient(subscribeUrl(this.fs, this.flowId), { lastEventId: this.#lastId });
    await c.opened();
    this.#client = c;
  }

  async disconnect(): Promise<void> {
    const c = this.#client!;
    await c.close();
    this.#collect(c);
    this.#client = undefined;
  }

  async reconnect(): Promise<void> {
    await this.disconnect();
    this.reconnects++;
    await this.connect();
  }

  #collect(c: SseClient): void {
    for (const e of c.events()) {
      if (e.type === "RESET") throw new Error(`unexpected RESET for ${this.flowId}: ${JSON.stringify(e.data)}`);
      this.received.push({ op: e.data.op as string, id: e.data.id as string, seq: (e.data.doc as { seq?: unknown } | null)?.seq ?? null });
    }
    this.#lastId = c.lastEventId;
  }

  /** Waits until the current connection has seen the sentinel, then collects. */
  async finish(sentinel: string): Promise<void> {
    const c = this.#client!;
    await c.until((x) => x.events().some((e) => e.data.id === sentinel), 20_000, `sentinel ${sentinel}`);
    await this.disconnect();
  }
}

async function scenario(replayBufferSize: number, seed: number) {
  const rand = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const dbName = uniqueDb("rr");
  const fs = await startTestFlowsync(h.backend.url, { MONGO_DB: dbName, REPLAY_BUFFER_SIZE: String(replayBufferSize) });
  const nodes = h.client.db(dbName).collection<{ _id: string; flowId: string; seq: number }>("nodes");
  const expected = new Map(FLOWS.map((f) => [f, [] as Array<{ op: string; id: string; seq: unknown }>]));
  const live = new Map(FLOWS.map((f) => [f, [] as string[]]));
  const subs = FLOWS.flatMap((f) => Array.from({ length: SUBSCRIBERS_PER_FLOW }, () => new Resumer(fs, f)));
  try {
    for (const s of subs) await s.connect();
    let n = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const flowId = pick(FLOWS);
      const ids = live.get(flowId)!;
      const action = ids.length === 0 ? 0 : Math.floor(rand() * 4);
      const seq = ++n;
      if (action === 0) {
        const id = `${flowId}-d${seq}`;
        await nodes.insertOne({ _id: id, flowId, seq });
        ids.push(id);
        expected.get(flowId)!.push({ op: "insert", id, seq });
      } else if (action === 1) {
        const id = pick(ids);
        await nodes.updateOne({ _id: id }, { $set: { seq } });
        expected.get(flowId)!.push({ op: "update", id, seq });
      } else if (action === 2) {
        const id = pick(ids);
        await nodes.replaceOne({ _id: id }, { flowId, seq });
        expected.get(flowId)!.push({ op: "replace", id, seq });
      } else {
        const id = pick(ids);
        await nodes.deleteOne({ _id: id });
        ids.splice(ids.indexOf(id), 1);
        expected.get(flowId)!.push({ op: "delete", id, seq: null });
      }
      // Sometimes a subscriber drops off, and comes back after a few more writes or at once.
      if (rand() < 0.15) await pick(subs).reconnect();
    }
    for (const flowId of FLOWS) {
      const id = `${flowId}-sentinel`;
      await nodes.insertOne({ _id: id, flowId, seq: -1 });
      expected.get(flowId)!.push({ op: "insert", id, seq: -1 });
    }
    for (const s of subs) await s.finish(`${s.flowId}-sentinel`);

    for (const s of subs) {
      // updateLookup reads the document when the event is read, so `seq` of an update may show a later value
      // on a catch-up; the (op, id) sequence is what must be exact.
      expect(
        s.received.map(({ op, id }) => `${op}:${id}`),
        `subscriber of ${s.flowId}`,
      ).toEqual(expected.get(s.flowId)!.map(({ op, id }) => `${op}:${id}`));
    }
    return { reconnects: subs.reduce((k, s) => k + s.reconnects, 0), counters: fs.subscriptions.counters };
  } finally {
    await fs.stop();
  }
}

describe("randomized resume", () => {
  it("loses and repeats nothing with a large replay buffer (resumes from memory)", async () => {
    const { reconnects, counters } = await scenario(10_000, testSeed("resume/large-buffer"));
    expect(reconnects).toBeGreaterThan(0);
    // A reconnect before the first event carries no cursor, so not every reconnect is a replay.
    expect(counters.replayedFromMemory).toBeGreaterThan(0);
    expect(counters.resets).toBe(0);
    expect(counters.replayedFromMongo).toBe(0);
  }, 120_000);

  it("loses and repeats nothing with a replay buffer of 1 (resumes through catch-up streams)", async () => {
    const { reconnects, counters } = await scenario(1, testSeed("resume/buffer-1"));
    expect(reconnects).toBeGreaterThan(0);
    expect(counters.replayedFromMongo).toBeGreaterThan(0);
    expect(counters.resets).toBe(0);
  }, 120_000);
});
