/**
 * Randomized: inserts, updates, replaces and deletes across several flows while
 * subscribers disconnect and reconnect at random points with their last id.
 * Every subscriber must end with exactly its flow's sequence of events, in
 * order: nothing lost, nothing repeated. Once with a replay buffer large enough
 * to serve every resume from memory, once with a buffer of 1 (every resume
 * runs a catch-up change stream from MongoDB).
 */
import { describe, expect, it } from "vitest";
import { createFlowStore, type DocEvent } from "flowsync-client";
import { flowEventSchema } from "../../src/events/schemas";
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

/**
 * Embedded entities (test/fixtures/filters-embedded): one change of a workflow document is
 * several events. A resumer that drops off may also drop a random tail of what it had
 * received (a client that crashed before processing it) and resume from the last event it
 * kept, often one inside a multi-element change. Its events must equal, cursor for cursor,
 * those of a witness that never left, and the witness's store must equal MongoDB.
 */
async function embeddedScenario(replayBufferSize: number, seed: number) {
  const rand = seededRandom(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const dbName = uniqueDb("rre");
  const db = h.client.db(dbName);
  await db.createCollection("workflows", { changeStreamPreAndPostImages: { enabled: true } });
  const fs = await startTestFlowsync(h.backend.url, {
    MONGO_DB: dbName,
    REPLAY_BUFFER_SIZE: String(replayBufferSize),
    FILTERS_DIR: "test/fixtures/filters-embedded",
  });
  const wf = db.collection<{ _id: string; [k: string]: unknown }>("workflows");
  const flowId = "wf-r";
  type Got = { id: string; what: string; event: { type?: string; data: Record<string, unknown> } };
  const witness = new SseClient(subscribeUrl(fs, flowId));
  let lastId: string | undefined;
  let current: SseClient | undefined;
  const received: Got[] = [];
  let inside = 0;
  const connect = async () => {
    current = new SseClient(subscribeUrl(fs, flowId), { lastEventId: lastId });
    await current.opened();
  };
  const disconnect = async (final = false) => {
    const c = current!;
    await c.close();
    const got = c.events().map((e) => ({ id: e.id!, what: `${String(e.data.op)}:${String(e.data.entity)}:${String(e.data.id)}`, event: e }));
    // Sometimes the client lost a tail of what came (it crashed before applying it): it resumes from the last one it kept.
    // Mostly right after an event that is not the last of its change (its cursor is a sub-position).
    const inner = got.flatMap((g, i) => (/-\d+-\d+-\d+$/.test(g.id) ? [i + 1] : []));
    const cut = rand();
    const cutAt = final || got.length === 0 || cut >= 0.6 ? got.length : inner.length > 0 && cut < 0.4 ? inner[int(inner.length)]! : int(got.length + 1);
    // A client that kept nothing yet has no cursor: it would reconnect "live from now" and rightly miss what came
    // meanwhile. It keeps at least its first event, so that every reconnect is a resume.
    const keep = received.length === 0 ? Math.max(cutAt, Math.min(1, got.length)) : cutAt;
    received.push(...got.slice(0, keep));
    const last = received[received.length - 1];
    if (last) lastId = last.id;
    if (last && /-\d+-\d+-\d+$/.test(last.id)) inside++;
  };
  try {
    await witness.opened();
    await connect();
    let n = 0;
    const node = () => ({ id: `n${++n}`, position: { x: int(800), y: int(600) }, credentials: { apiKey: "S3CRET" } });
    await wf.insertOne({ _id: flowId, name: "r", nodes: [node(), node(), node()], edges: [] });
    // The same reason: the first disconnect must come after the resumer has a cursor.
    await current!.until((c) => c.events().length > 0, 20_000, "the resumer's first event");
    for (let round = 0; round < 80; round++) {
      const doc = (await wf.findOne({ _id: flowId }))!;
      const ids = (doc.nodes as Array<{ id: string }>).map((x) => x.id);
      const some = ids.filter(() => rand() < 0.4);
      const r = rand();
      if (r < 0.2 || ids.length < 2) await wf.updateOne({ _id: flowId }, { $push: { nodes: { $each: Array.from({ length: 1 + int(3) }, node) } } } as never);
      else if (r < 0.35) await wf.updateOne({ _id: flowId }, { $inc: { "nodes.$[].position.x": 1 }, $set: { name: `r${round}` } } as never);
      else if (r < 0.5) await wf.updateOne({ _id: flowId }, { $pull: { nodes: { id: { $in: some } } } } as never);
      else if (r < 0.6)
        await wf.updateOne({ _id: flowId }, { $set: { "nodes.$[p].position.y": int(600) } } as never, { arrayFilters: [{ "p.id": { $in: some } }] });
      else if (r < 0.7) await wf.updateOne({ _id: flowId }, [{ $set: { nodes: { $slice: [{ $reverseArray: "$nodes" }, Math.max(1, ids.length - 1)] } } }]);
      else if (r < 0.8) await wf.updateOne({ _id: flowId }, { $push: { edges: { id: `e${round}`, source: ids[0], target: ids[1] } } } as never);
      else if (r < 0.9) await wf.replaceOne({ _id: flowId }, { name: `rep${round}`, nodes: [node(), ...(doc.nodes as object[]).slice(1)], edges: [] });
      else await wf.updateOne({ _id: flowId, "nodes.id": ids[int(ids.length)] }, { $set: { "nodes.$.position.x": int(800) } } as never);
      if (rand() < 0.3) {
        await disconnect();
        await connect();
      }
    }
    await wf.updateOne({ _id: flowId }, { $set: { name: "end" } });
    const isEnd = (c: SseClient) => c.events().some((e) => e.data.entity === "flow" && (e.data.doc as { name?: string } | null)?.name === "end");
    await witness.until(isEnd, 20_000, "the witness's last event");
    await current!.until(isEnd, 20_000, "the resumer's last event");
    await disconnect(true);
    await witness.close();
    expect(witness.raw).not.toContain("S3CRET");
    const truth = witness.events().map((e) => ({ id: e.id!, what: `${String(e.data.op)}:${String(e.data.entity)}:${String(e.data.id)}` }));
    expect(received.map(({ id, what }) => ({ id, what }))).toEqual(truth);
    // And the witness's events, applied, give the database.
    const store = createFlowStore();
    for (const e of witness.events()) store.apply(flowEventSchema.parse({ type: e.type, data: e.data }) as DocEvent, e.id);
    const stored = (await wf.findOne({ _id: flowId }))!;
    expect(JSON.stringify(stored)).toContain("S3CRET");
    const shown = Object.fromEntries((stored.nodes as Array<Record<string, unknown>>).map(({ credentials: _c, ...rest }) => [rest.id as string, rest]));
    expect(store.getState().nodes).toEqual(shown);
    expect(Object.keys(store.getState().edges).sort()).toEqual((stored.edges as Array<{ id: string }>).map((e) => e.id).sort());
    return { inside, events: truth.length, counters: fs.subscriptions.counters };
  } finally {
    await fs.stop();
  }
}

describe("randomized resume, embedded entities", () => {
  for (const [name, size] of [
    ["memory", 10_000],
    ["catch-up streams", 1],
  ] as const) {
    it(`resumes from inside multi-element changes lose and repeat nothing (${name})`, async () => {
      const { inside, events, counters } = await embeddedScenario(size, testSeed(`resume/embedded-${size}`));
      console.log(`resume/embedded (${name}): ${events} events, ${inside} resumes from inside a change`);
      expect(inside).toBeGreaterThan(0);
      expect(counters.resets).toBe(0);
      if (size === 1) expect(counters.replayedFromMongo).toBeGreaterThan(0);
    }, 120_000);
  }
});
