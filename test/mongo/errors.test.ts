/**
 * Out-of-scope requests answer with a MongoDB error, never silently wrong data.
 * On a real mongod the "not implemented here" features simply work, so those
 * assertions are simulator-only (what they pin is the simulator's refusal).
 */
import { describe, expect, it } from "vitest";
import { coll, expectCode, isSim, uniqueDb, useBackend } from "./helpers";

describe("errors for unknown and out-of-scope requests", () => {
  const h = useBackend();

  it("an unknown command fails with 59 CommandNotFound", async () => {
    const err = await expectCode(h.client.db("admin").command({ noSuchCommandAtAll: 1 }), 59);
    expect(err.codeName).toBe("CommandNotFound");
  });

  it.runIf(isSim)("find with a collation fails with 238 NotImplemented (simulator scope)", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ a: "x" });
    const err = await expectCode(c.find({ a: "X" }, { collation: { locale: "en", strength: 2 } }).toArray(), 238);
    expect(err.codeName).toBe("NotImplemented");
  });

  it.runIf(isSim)("updates with a collation fail with 238 NotImplemented (simulator scope)", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ a: "x" });
    await expectCode(c.updateOne({ a: "X" }, { $set: { b: 1 } }, { collation: { locale: "en", strength: 2 } }), 238);
    expect(await c.findOne({}, { projection: { _id: 0 } })).toEqual({ a: "x" });
  });

  it.runIf(isSim)("aggregate with $out fails with 238 NotImplemented and writes nothing (simulator scope)", async () => {
    const db = h.client.db(uniqueDb());
    await coll(db, "c").insertOne({ a: 1 });
    await expectCode(coll(db, "c").aggregate([{ $match: {} }, { $out: "copy" }]).toArray(), 238);
    await expectCode(coll(db, "c").aggregate([{ $out: "copy" }]).toArray(), 238);
    expect((await db.listCollections().toArray()).map((c) => c.name)).toEqual(["c"]);
  });

  it.runIf(isSim)("transactions fail with 238 NotImplemented (simulator scope)", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ _id: 0 });
    const session = h.client.startSession();
    try {
      session.startTransaction();
      await expectCode(c.insertOne({ _id: 1 }, { session }), 238);
    } finally {
      await session.abortTransaction().catch(() => {});
      await session.endSession();
    }
    expect(await c.countDocuments()).toBe(1);
  });

  it("aggregate with an unknown stage fails with 40324", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ a: 1 });
    await expectCode(c.aggregate([{ $noSuchStage: {} }]).toArray(), 40324);
  });

  it("aggregate with an unknown expression operator fails with 168 InvalidPipelineOperator", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ a: 1 });
    await expectCode(c.aggregate([{ $project: { x: { $noSuchExpression: 1 } } }]).toArray(), 168);
  });

  it("find with an unknown query operator fails with 2 BadValue", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ a: 1 });
    await expectCode(c.find({ a: { $noSuchOperator: 1 } }).toArray(), 2);
  });

  it("an update with an unknown modifier fails with 9 FailedToParse and changes nothing", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ _id: 1 });
    await expectCode(c.updateOne({ _id: 1 }, { $noSuchOperator: { a: 1 } } as never), 9);
    expect(await c.findOne({ _id: 1 })).toEqual({ _id: 1 });
  });
});
