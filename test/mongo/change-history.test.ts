/**
 * History lost: a resume point older than the oplog fails with 286
 * ChangeStreamHistoryLost. Forcing a resume token off the end of the oplog needs
 * the simulator's `oplogSize` knob (a real oplog is sized in megabytes); those
 * tests run on the simulator only. A start time older than the whole oplog
 * means the same on any deployment and runs everywhere.
 */
import { describe, expect, it } from "vitest";
import { Timestamp } from "mongodb";
import { coll, expectCode, isSim, nextEvents, openStream, uniqueDb, useBackend } from "./helpers";

const OPLOG_SIZE = 5;

describe("change stream history lost", () => {
  const h = useBackend({ oplogSize: OPLOG_SIZE });

  /** A collection's first change event, then enough writes to push it out of the oplog. */
  async function fallenOff() {
    const c = coll(h.client.db(uniqueDb()), "c");
    const stream = await openStream(c);
    await c.insertOne({ _id: 1 });
    const [first] = await nextEvents(stream, 1);
    await stream.close();
    for (let i = 2; i <= OPLOG_SIZE + 2; i++) await c.insertOne({ _id: i });
    return { c, first: first! };
  }

  it("startAtOperationTime older than the oplog fails with 286", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ _id: 1 });
    const stream = c.watch([], { startAtOperationTime: new Timestamp({ t: 1, i: 0 }) });
    const err = await expectCode(stream.next(), 286);
    expect(err.codeName).toBe("ChangeStreamHistoryLost");
    await stream.close();
  });

  it.runIf(isSim)("resumeAfter a token that fell off a small oplog (simulator oplogSize) fails with 286", async () => {
    const { c, first } = await fallenOff();
    await expectCode(c.watch([], { resumeAfter: first._id }).next(), 286);
    await expectCode(c.watch([], { startAfter: first._id }).next(), 286);
    await expectCode(c.watch([], { startAtOperationTime: first.clusterTime }).next(), 286);
  });

  it.runIf(isSim)("a token still inside the oplog resumes normally (simulator oplogSize)", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    // Created first: the create is an oplog entry of its own, older than the stream.
    await h.client.db(c.dbName).createCollection("c");
    const stream = await openStream(c);
    for (let i = 1; i <= OPLOG_SIZE; i++) await c.insertOne({ _id: i });
    const events = await nextEvents(stream, OPLOG_SIZE);
    await stream.close();
    // The oplog now holds exactly these five writes: resuming after the oldest loses nothing.
    const resumed = c.watch([], { resumeAfter: events[0]!._id, maxAwaitTimeMS: 100 });
    expect((await nextEvents(resumed, OPLOG_SIZE - 1)).map((e) => e.documentKey._id)).toEqual([2, 3, 4, 5]);
    await resumed.close();
  });

  it.runIf(isSim)("the history-lost error is not resumable: the driver does not retry it (simulator oplogSize)", async () => {
    const { c, first } = await fallenOff();
    const err = await expectCode(c.watch([], { resumeAfter: first._id }).next(), 286);
    expect(err.hasErrorLabel("ResumableChangeStreamError")).toBe(false);
  });
});
