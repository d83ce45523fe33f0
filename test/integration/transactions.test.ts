/**
 * Writers that use multi-document transactions (as NestJS/Mongoose services do):
 * the events of one transaction share a cluster time and are told apart only by
 * their place in it, which is exactly where ordering and resume can go wrong.
 * Subscribers must get them in order, exactly once — live, after resuming from any
 * event inside the transaction (from memory and through a catch-up stream), and
 * across the seam of a snapshot taken while transactions commit; an aborted
 * transaction must leave nothing.
 */
import type { ClientSession, Db, MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Flowsync } from "../../src/flowsync";
import { connected, startTestFlowsync, useFlowsync } from "../support/flowsync";
import { seededRandom, testSeed } from "../support/random";
import { snapshotMidWrites } from "../support/seam";
import type { SseClient } from "../support/sse-client";

const t = useFlowsync("txn");

type Doc = Record<string, unknown> & { _id: string };
type Event = ReturnType<SseClient["events"]>[number];

async function transaction(client: MongoClient, work: (db: Db, session: ClientSession) => Promise<void>): Promise<void> {
  const session = client.startSession();
  try {
    await session.withTransaction(() => work(client.db(t.db.databaseName), session));
  } finally {
    await session.endSession();
  }
}

/** One transaction with five writes to flow `flowId` (and one to another flow in between). */
async function fiveWrites(flowId: string, other: string): Promise<void> {
  await transaction(t.writer, async (db, session) => {
    await db.collection<Doc>("nodes").insertOne({ _id: `${flowId}-n1`, flowId, v: 1 }, { session });
    await db.collection<Doc>("edges").insertOne({ _id: `${flowId}-e1`, flowId, source: `${flowId}-n1`, target: "x" }, { session });
    await db.collection<Doc>("nodes").insertOne({ _id: `${other}-n1`, flowId: other }, { session });
    await db.collection<Doc>("nodes").updateOne({ _id: `${flowId}-n1` }, { $set: { v: 2 } }, { session });
    await db.collection<Doc>("flow_logs").insertOne({ _id: `${flowId}-l1`, flowId, chunk: "tok" }, { session });
    await db.collection<Doc>("edges").deleteOne({ _id: `${flowId}-e1` }, { session });
  });
}

const FIVE = (flowId: string) => [
  ["SYNC_CANVAS", "insert", `${flowId}-n1`],
  ["SYNC_CANVAS", "insert", `${flowId}-e1`],
  ["SYNC_CANVAS", "update", `${flowId}-n1`],
  ["LOG_STREAM", "insert", `${flowId}-l1`],
  ["SYNC_CANVAS", "delete", `${flowId}-e1`],
];

const shape = (events: Event[]) => events.map((e) => [e.type, e.data.op, e.data.id]);

/** A plain write after the transaction: once it has arrived, everything before it has too (a flow's events arrive in order). */
async function sentinel(flowId: string): Promise<string> {
  const id = `${flowId}-end-${Math.random().toString(36).slice(2, 8)}`;
  await t.db.collection<Doc>("nodes").insertOne({ _id: id, flowId });
  return id;
}

async function untilId(c: SseClient, id: string): Promise<void> {
  await c.until((x) => x.events().some((e) => e.data.id === id), 15_000, `event ${id}`);
}

describe("transactions", () => {
  it("the writes of a committed transaction reach each flow's subscribers in transaction order, exactly once", async () => {
    const a = await connected(t.fs, "tx-a");
    const b = await connected(t.fs, "tx-b");
    await fiveWrites("tx-a", "tx-b");
    const endA = await sentinel("tx-a");
    const endB = await sentinel("tx-b");
    await untilId(a, endA);
    await untilId(b, endB);
    expect(shape(a.events())).toEqual([...FIVE("tx-a"), ["SYNC_CANVAS", "insert", endA]]);
    expect(shape(b.events())).toEqual([
      ["SYNC_CANVAS", "insert", "tx-b-n1"],
      ["SYNC_CANVAS", "insert", endB],
    ]);
    // Every event has its own cursor, although the five share one cluster time.
    expect(new Set(a.events().map((e) => e.id)).size).toBe(6);
    await Promise.all([a.close(), b.close()]);
  });

  it("an aborted transaction sends nothing", async () => {
    const c = await connected(t.fs, "tx-abort");
    const session = t.writer.startSession();
    try {
      session.startTransaction();
      await t.db.collection<Doc>("nodes").insertOne({ _id: "tx-abort-gone", flowId: "tx-abort" }, { session });
      await t.db.collection<Doc>("flow_logs").insertOne({ _id: "tx-abort-log", flowId: "tx-abort", chunk: "x" }, { session });
      await session.abortTransaction();
    } finally {
      await session.endSession();
    }
    const end = await sentinel("tx-abort");
    await untilId(c, end);
    expect(shape(c.events())).toEqual([["SYNC_CANVAS", "insert", end]]);
    expect(await t.db.collection("nodes").countDocuments({ _id: "tx-abort-gone" as never })).toBe(0);
    await c.close();
  });

  describe("resuming from an event inside a transaction gives exactly the rest", () => {
    let catchUpFs: Flowsync;
    beforeAll(async () => {
      // A replay buffer of 1: a resume from anything but the newest event runs a catch-up change stream.
      catchUpFs = await startTestFlowsync(t.backend.url, { MONGO_DB: t.db.databaseName, REPLAY_BUFFER_SIZE: "1" });
    });
    afterAll(async () => catchUpFs?.stop());

    for (const source of ["memory", "catch-up"] as const) {
      it(`from ${source}`, async () => {
        const fs = source === "memory" ? t.fs : catchUpFs;
        const flowId = `tx-resume-${source}`;
        const live = await connected(fs, flowId);
        await fiveWrites(flowId, `${flowId}-other`);
        const end = await sentinel(flowId);
        await untilId(live, end);
        await live.close();
        const all = live.events();
        expect(shape(all)).toEqual([...FIVE(flowId), ["SYNC_CANVAS", "insert", end]]);

        const { replayedFromMemory, replayedFromMongo } = fs.subscriptions.counters;
        for (let k = 0; k < 5; k++) {
          const resumed = await connected(fs, flowId, all[k]!.id);
          await untilId(resumed, end);
          await resumed.close();
          expect(shape(resumed.events()), `resume after event ${k}`).toEqual(shape(all.slice(k + 1)));
          expect(resumed.events().map((e) => e.id)).toEqual(all.slice(k + 1).map((e) => e.id));
        }
        // With a buffer of 1 only the newest event (the sentinel) is in memory: the resume after
        // the transaction's last write is served from there, the four before it by catch-up streams.
        const fromMongo = source === "memory" ? 0 : 4;
        expect(fs.subscriptions.counters.replayedFromMongo - replayedFromMongo).toBe(fromMongo);
        expect(fs.subscriptions.counters.replayedFromMemory - replayedFromMemory).toBe(5 - fromMongo);
      });
    }
  });

  it("a snapshot taken while transactions commit stitches to the stream without gap or duplicate", async () => {
    const seed = testSeed("transactions/seam");
    for (let trial = 0; trial < 5; trial++) {
      const rand = seededRandom(seed + trial);
      const flowId = `tx-seam-${trial}`;
      let n = 0;
      // Each writer commits transactions of a few inserts, updates and deletes of its own nodes.
      const write = async (client: MongoClient, w: number, stopped: () => boolean) => {
        const mine = new Set<string>();
        while (!stopped()) {
          let created: string[] = [];
          let deleted: string[] = [];
          await transaction(client, async (db, session) => {
            // withTransaction may run this again: only the attempt that commits counts.
            created = [];
            deleted = [];
            const nodes = db.collection<Doc>("nodes");
            const ops = 1 + Math.floor(rand() * 4);
            for (let i = 0; i < ops; i++) {
              const live = [...mine, ...created].filter((id) => !deleted.includes(id));
              const r = rand();
              if (live.length === 0 || r < 0.45) {
                const id = `${flowId}-w${w}-${n++}`;
                await nodes.insertOne({ _id: id, flowId, v: n }, { session });
                created.push(id);
              } else if (r < 0.8) {
                await nodes.updateOne({ _id: live[Math.floor(rand() * live.length)] }, { $set: { v: n++ } }, { session });
              } else {
                const id = live[Math.floor(rand() * live.length)];
                await nodes.deleteOne({ _id: id }, { session });
                deleted.push(id!);
              }
            }
          });
          for (const id of created) mine.add(id);
          for (const id of deleted) mine.delete(id);
        }
      };
      const events = await snapshotMidWrites(t, flowId, rand, 2, write);

      const [snap, ...rest] = events;
      expect(snap!.type).toBe("SNAPSHOT");
      const state = new Map<string, Doc>(((snap!.data.canvas as Record<string, Doc[]>).node ?? []).map((d) => [d._id, d]));
      for (const e of rest) {
        if (e.type !== "SYNC_CANVAS") continue;
        const { op, id, doc } = e.data as { op: string; id: string; doc: Doc | null };
        if (op === "insert") {
          expect(state.has(id), `trial ${trial} (seed ${seed + trial}): duplicate insert of ${id}`).toBe(false);
          state.set(id, doc!);
        } else if (op === "delete") {
          expect(state.has(id), `trial ${trial} (seed ${seed + trial}): delete of ${id} never seen`).toBe(true);
          state.delete(id);
        } else if (doc) state.set(id, doc);
      }
      const truth = await t.db.collection<Doc>("nodes").find({ flowId }).toArray();
      expect([...state.keys()].sort(), `trial ${trial} (seed ${seed + trial})`).toEqual(truth.map((d) => d._id).sort());
      for (const d of truth) expect(state.get(d._id), `trial ${trial}: ${d._id}`).toEqual(d);
    }
  }, 120_000);
});
