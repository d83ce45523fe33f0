/**
 * Snapshot reads (sessions spec "Snapshot Reads"): a snapshot session reads one
 * point in time, reported as atClusterTime; a change stream started one increment
 * after it continues exactly where the snapshot ends.
 */
import { describe, expect, it } from "vitest";
import { Timestamp, type Document } from "mongodb";
import { coll, expectCode, nextEvents, recordCommands, uniqueDb, useBackend } from "./helpers";

describe("snapshot reads", () => {
  const h = useBackend({}, { monitorCommands: true });

  async function seeded(n: number) {
    const c = coll(h.client.db(uniqueDb()), "c");
    if (n > 0) await c.insertMany(Array.from({ length: n }, (_, i) => ({ _id: i + 1, v: 0 })));
    return c;
  }

  it("two finds in a snapshot session see the same data despite writes in between", async () => {
    const c = await seeded(3);
    const session = h.client.startSession({ snapshot: true });
    try {
      const first = await c.find({}, { session }).sort({ _id: 1 }).toArray();
      await c.insertOne({ _id: 4, v: 0 });
      await c.updateOne({ _id: 1 }, { $set: { v: 1 } });
      await c.deleteOne({ _id: 2 });
      const second = await c.find({}, { session }).sort({ _id: 1 }).toArray();
      expect(second).toEqual(first);
      expect(first.map((d) => d._id)).toEqual([1, 2, 3]);
      // Outside the session the writes are visible.
      expect((await c.find().sort({ _id: 1 }).toArray()).map((d) => [d._id, d.v])).toEqual([
        [1, 1],
        [3, 0],
        [4, 0],
      ]);
    } finally {
      await session.endSession();
    }
  });

  it("reports cursor.atClusterTime on the first read and pins later reads to it", async () => {
    const c = await seeded(2);
    const rec = recordCommands(h.client, "commandSucceeded");
    const started = recordCommands(h.client, "commandStarted");
    const session = h.client.startSession({ snapshot: true });
    try {
      await c.find({}, { session }).toArray();
      await c.insertOne({ _id: 3 });
      await c.aggregate([{ $match: {} }], { session }).toArray();
    } finally {
      rec.stop();
      started.stop();
      await session.endSession();
    }
    const reads = rec.seen.filter((e) => e.commandName === "find" || e.commandName === "aggregate").map((e) => e.reply.cursor as Document);
    const atClusterTime = reads[0]!.atClusterTime as Timestamp;
    expect(atClusterTime).toBeInstanceOf(Timestamp);
    const sent = started.seen.filter((e) => e.commandName === "find" || e.commandName === "aggregate").map((e) => e.command.readConcern);
    expect(sent[0]).toEqual({ level: "snapshot" });
    expect(sent[1].level).toBe("snapshot");
    expect(sent[1].atClusterTime.equals(atClusterTime)).toBe(true);
  });

  it("distinct in a snapshot session reports a top-level atClusterTime and reads the snapshot", async () => {
    const c = await seeded(2);
    const rec = recordCommands(h.client, "commandSucceeded");
    const session = h.client.startSession({ snapshot: true });
    try {
      await c.find({}, { session }).toArray();
      await c.insertOne({ _id: 9, v: 9 });
      expect(await c.distinct("v", {}, { session })).toEqual([0]);
    } finally {
      rec.stop();
      await session.endSession();
    }
    const distinct = rec.seen.find((e) => e.commandName === "distinct")!;
    expect(distinct.reply.atClusterTime).toBeInstanceOf(Timestamp);
  });

  it("a snapshot reflects every write up to atClusterTime and none after", async () => {
    const c = await seeded(0);
    const before = await c.db.command({ insert: "c", documents: [{ _id: "a" }] });
    const reply = await c.db.command({ find: "c", readConcern: { level: "snapshot" } });
    const at: Timestamp = reply.cursor.atClusterTime;
    expect(at.greaterThanOrEqual(before.operationTime)).toBe(true);
    await c.insertOne({ _id: "b" });
    const again = await c.db.command({ find: "c", readConcern: { level: "snapshot", atClusterTime: at } });
    expect(again.cursor.firstBatch).toEqual([{ _id: "a" }]);
  });

  it("a snapshot far in the past fails with 239 SnapshotTooOld", async () => {
    const c = await seeded(1);
    await expectCode(c.db.command({ find: "c", readConcern: { level: "snapshot", atClusterTime: new Timestamp({ t: 1, i: 0 }) } }), 239);
  });

  it("a change stream from atClusterTime + 1 increment continues exactly after the snapshot", async () => {
    const c = await seeded(3);
    const rec = recordCommands(h.client, "commandSucceeded");
    const session = h.client.startSession({ snapshot: true });
    let snapshot: Document[];
    try {
      snapshot = await c.find({}, { session }).sort({ _id: 1 }).toArray();
    } finally {
      rec.stop();
      await session.endSession();
    }
    const at = rec.seen.find((e) => e.commandName === "find")!.reply.cursor.atClusterTime as Timestamp;
    // Writes after the snapshot, before the stream opens: the stream must deliver exactly these.
    await c.insertOne({ _id: 4 });
    await c.updateOne({ _id: 1 }, { $set: { v: 1 } });
    await c.deleteOne({ _id: 2 });
    const stream = c.watch([], { startAtOperationTime: new Timestamp({ t: at.high, i: at.low + 1 }), maxAwaitTimeMS: 100 });
    const events = await nextEvents(stream, 3);
    await c.insertOne({ _id: 5 });
    events.push(...(await nextEvents(stream, 1)));
    await stream.close();
    expect(snapshot.map((d) => d._id)).toEqual([1, 2, 3]);
    expect(events.map((e) => `${e.operationType}:${e.documentKey._id}`)).toEqual(["insert:4", "update:1", "delete:2", "insert:5"]);
    for (const e of events) expect(e.clusterTime.greaterThan(at)).toBe(true);
  });
});
