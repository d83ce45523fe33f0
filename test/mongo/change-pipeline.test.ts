/** Stages after $changeStream: allowed ones transform events; the resume token must survive. */
import { describe, expect, it } from "vitest";
import { coll, expectCode, nextEvents, openStream, uniqueDb, useBackend } from "./helpers";

describe("change stream pipelines", () => {
  const h = useBackend();
  const fresh = () => coll(h.client.db(uniqueDb()), "c");

  it("$match filters events", async () => {
    const c = fresh();
    const stream = await openStream(c, [{ $match: { operationType: "delete" } }]);
    await c.insertMany([{ _id: 1 }, { _id: 2 }]);
    await c.updateOne({ _id: 1 }, { $set: { a: 1 } });
    await c.deleteOne({ _id: 2 });
    const [e] = await nextEvents(stream, 1);
    expect([e!.operationType, e!.documentKey]).toEqual(["delete", { _id: 2 }]);
    await stream.close();
  });

  it("$match can filter on fullDocument fields", async () => {
    const c = fresh();
    const stream = await openStream(c, [{ $match: { "fullDocument.keep": true } }]);
    await c.insertMany([
      { _id: 1, keep: false },
      { _id: 2, keep: true },
    ]);
    const [e] = await nextEvents(stream, 1);
    expect(e!.documentKey).toEqual({ _id: 2 });
    await stream.close();
  });

  it("$project keeps only the named fields (and _id)", async () => {
    const c = fresh();
    const stream = await openStream(c, [{ $project: { operationType: 1, documentKey: 1 } }]);
    await c.insertOne({ _id: 1, a: 1 });
    const [e] = await nextEvents(stream, 1);
    expect(e).toEqual({ _id: { _data: expect.any(String) }, operationType: "insert", documentKey: { _id: 1 } });
    await stream.close();
  });

  it("$addFields, $set and $unset reshape events", async () => {
    const c = fresh();
    const stream = await openStream(c, [{ $addFields: { k: "$documentKey._id" } }, { $set: { tag: "x" } }, { $unset: ["fullDocument", "ns"] }]);
    await c.insertOne({ _id: 7, a: 1 });
    const [e] = await nextEvents(stream, 1);
    expect([e!.k, e!.tag, e!.fullDocument, e!.ns]).toEqual([7, "x", undefined, undefined]);
    await stream.close();
  });

  it("$replaceRoot that keeps _id is allowed", async () => {
    const c = fresh();
    const stream = await openStream(c, [{ $replaceRoot: { newRoot: { _id: "$_id", doc: "$fullDocument" } } }]);
    await c.insertOne({ _id: 1, a: 1 });
    const [e] = await nextEvents(stream, 1);
    expect(e).toEqual({ _id: { _data: expect.any(String) }, doc: { _id: 1, a: 1 } });
    await stream.close();
  });

  it("projecting _id out fails with 280 when an event is produced", async () => {
    const c = fresh();
    const stream = await openStream(c, [{ $project: { _id: 0 } }]);
    await c.insertOne({ _id: 1 });
    await expectCode(stream.next(), 280);
    await stream.close();
  });

  it("changing _id fails with 280", async () => {
    const c = fresh();
    const stream = await openStream(c, [{ $set: { _id: "replaced" } }]);
    await c.insertOne({ _id: 1 });
    await expectCode(stream.next(), 280);
    await stream.close();
  });

  it("an unknown stage fails the aggregate with 40324", async () => {
    await expectCode(openStream(fresh(), [{ $noSuchStage: {} }]), 40324);
  });

  it("a stage not allowed in a change stream ($group) fails with 20 IllegalOperation", async () => {
    await expectCode(openStream(fresh(), [{ $group: { _id: null } }]), 20);
  });

  it("an unknown $changeStream option fails with 40415", async () => {
    const c = fresh();
    await expectCode(c.aggregate([{ $changeStream: { noSuchOption: true } }]).toArray(), 40415);
  });

  it("resumeAfter with startAfter fails with 50865; a token with startAtOperationTime with 40674", async () => {
    const c = fresh();
    const stream = await openStream(c);
    await c.insertOne({ _id: 1 });
    const [e] = await nextEvents(stream, 1);
    await stream.close();
    await expectCode(c.aggregate([{ $changeStream: { resumeAfter: e!._id, startAfter: e!._id } }]).toArray(), 50865);
    await expectCode(c.aggregate([{ $changeStream: { resumeAfter: e!._id, startAtOperationTime: e!.clusterTime } }]).toArray(), 40674);
    await expectCode(c.aggregate([{ $changeStream: { startAfter: e!._id, startAtOperationTime: e!.clusterTime } }]).toArray(), 40674);
  });

  it("a stream on the admin database needs allChangesForCluster (73), and that option only fits admin (72)", async () => {
    await expectCode(
      h.client
        .db("admin")
        .aggregate([{ $changeStream: {} }])
        .toArray(),
      73,
    );
    await expectCode(
      h.client
        .db(uniqueDb())
        .aggregate([{ $changeStream: { allChangesForCluster: true } }])
        .toArray(),
      72,
    );
  });

  it("$$NOW is the time the stream opened, the same in every stage and every event; a $match outside $expr compares the plain string", async () => {
    const c = fresh();
    const opened = Date.now();
    const stream = await openStream(c, [
      { $match: { $and: [{ $expr: { $lte: ["$$NOW", "$$NOW"] } }, { $or: [{ "fullDocument.s": "$$NOW" }, { "fullDocument._id": 2 }] }] } },
      { $project: { _id: 1, fullDocument: 1, p: "$$NOW", lit: { $literal: "$$NOW" } } },
      { $addFields: { a: "$$NOW" } },
    ]);
    await c.insertOne({ _id: 1, s: "$$NOW" });
    await c.insertOne({ _id: 3, s: "x" });
    const [first] = await nextEvents(stream, 1);
    await new Promise((r) => setTimeout(r, 20)); // the clock moves on between the two events
    await c.insertOne({ _id: 2 });
    const [second] = await nextEvents(stream, 1);
    for (const e of [first!, second!]) {
      expect(e.p).toBeInstanceOf(Date);
      expect(e.a).toEqual(e.p);
      expect(e.lit).toBe("$$NOW");
    }
    expect(second!.p).toEqual(first!.p);
    expect((first!.p as Date).getTime()).toBeGreaterThanOrEqual(opened - 1000);
    expect(first!.fullDocument).toEqual({ _id: 1, s: "$$NOW" });
    expect(second!.fullDocument).toEqual({ _id: 2 });
    await stream.close();
  });
});
