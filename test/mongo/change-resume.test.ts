/**
 * Where a stream starts: resumeAfter and startAfter are exclusive, startAtOperationTime
 * is inclusive (change-streams spec "Resume Process"; docs "Resume a Change Stream").
 */
import { describe, expect, it } from "vitest";
import { Timestamp } from "mongodb";
import { coll, expectCode, nextEvents, openStream, uniqueDb, useBackend } from "./helpers";

describe("resume and start options", () => {
  const h = useBackend();
  const ids = (events: { documentKey?: { _id: unknown } }[]) => events.map((e) => e.documentKey?._id);

  /** A collection with a recorded history of inserts 1..5; returns their events. */
  async function history() {
    const c = coll(h.client.db(uniqueDb()), "c");
    const stream = await openStream(c);
    for (let i = 1; i <= 5; i++) await c.insertOne({ _id: i });
    const events = await nextEvents(stream, 5);
    await stream.close();
    return { c, events };
  }

  it("resumeAfter a token returns exactly the events after it", async () => {
    const { c, events } = await history();
    const stream = c.watch([], { resumeAfter: events[1]!._id, maxAwaitTimeMS: 100 });
    expect(ids(await nextEvents(stream, 3))).toEqual([3, 4, 5]);
    await c.insertOne({ _id: 6 });
    expect(ids(await nextEvents(stream, 1))).toEqual([6]);
    await stream.close();
  });

  it("startAfter a token returns exactly the events after it", async () => {
    const { c, events } = await history();
    const stream = c.watch([], { startAfter: events[3]!._id, maxAwaitTimeMS: 100 });
    expect(ids(await nextEvents(stream, 1))).toEqual([5]);
    expect(await stream.tryNext()).toBeNull();
    await stream.close();
  });

  it("resumeAfter the last token waits for the next event", async () => {
    const { c, events } = await history();
    const stream = await openStream(c, [], { resumeAfter: events[4]!._id });
    await c.insertOne({ _id: 6 });
    expect(ids(await nextEvents(stream, 1))).toEqual([6]);
    await stream.close();
  });

  it("startAtOperationTime is inclusive: the event at that time is returned", async () => {
    const { c, events } = await history();
    const stream = c.watch([], { startAtOperationTime: events[2]!.clusterTime, maxAwaitTimeMS: 100 });
    expect(ids(await nextEvents(stream, 3))).toEqual([3, 4, 5]);
    await stream.close();
  });

  it("startAtOperationTime one increment after an event's time starts just after it", async () => {
    const { c, events } = await history();
    const t: Timestamp = events[2]!.clusterTime;
    const stream = c.watch([], { startAtOperationTime: new Timestamp({ t: t.high, i: t.low + 1 }), maxAwaitTimeMS: 100 });
    expect(ids(await nextEvents(stream, 2))).toEqual([4, 5]);
    await stream.close();
  });

  it("a token from a database stream resumes a collection stream on the same event", async () => {
    const db = h.client.db(uniqueDb());
    const dbStream = await openStream(db);
    for (let i = 1; i <= 3; i++) await coll(db, "c").insertOne({ _id: i });
    const events = await nextEvents(dbStream, 3);
    await dbStream.close();
    const stream = coll(db, "c").watch([], { resumeAfter: events[0]!._id, maxAwaitTimeMS: 100 });
    expect(ids(await nextEvents(stream, 2))).toEqual([2, 3]);
    await stream.close();
  });

  it("a token from another collection's stream fails with 280 (token not found)", async () => {
    const db = h.client.db(uniqueDb());
    const a = await openStream(coll(db, "a"));
    await coll(db, "a").insertOne({ _id: 1 });
    const [event] = await nextEvents(a, 1);
    await a.close();
    await coll(db, "b").insertOne({ _id: 2 });
    const stream = coll(db, "b").watch([], { resumeAfter: event!._id, maxAwaitTimeMS: 100 });
    await expectCode(stream.next(), 280);
    await stream.close();
  });

  it("a stream with no start option begins after the writes made before it opened", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ _id: "before" });
    const stream = await openStream(c);
    await c.insertOne({ _id: "after" });
    expect(ids(await nextEvents(stream, 1))).toEqual(["after"]);
    await stream.close();
  });

  it("resume tokens of successive events sort in stream order", async () => {
    const { events } = await history();
    const tokens = events.map((e) => e._id._data as string);
    expect([...tokens].sort()).toEqual(tokens);
  });
});
