/**
 * Out-of-scope requests answer with a MongoDB error, never silently wrong data.
 * A real mongod implements collation, $out and transactions, so each test
 * accepts either the right result or 238 NotImplemented (the simulator's answer),
 * and never anything else.
 */
import { describe, expect, it } from "vitest";
import { MongoServerError } from "mongodb";
import { coll, expectCode, uniqueDb, useBackend } from "./helpers";
import { squashError } from "../../src/errors";

/** The result of `p`, or its NotImplemented (238) error; any other error fails the test. */
async function rightOrNotImplemented<T>(p: Promise<T>): Promise<{ value: T } | { notImplemented: MongoServerError }> {
  try {
    return { value: await p };
  } catch (err) {
    expect(err).toBeInstanceOf(MongoServerError);
    expect((err as MongoServerError).code).toBe(238);
    expect((err as MongoServerError).codeName).toBe("NotImplemented");
    return { notImplemented: err as MongoServerError };
  }
}

describe("errors for unknown and out-of-scope requests", () => {
  const h = useBackend();

  it("an unknown command fails with 59 CommandNotFound", async () => {
    const err = await expectCode(h.client.db("admin").command({ noSuchCommandAtAll: 1 }), 59);
    expect(err.codeName).toBe("CommandNotFound");
  });

  it("find with a collation: the collated result or 238, never the uncollated one", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ _id: 1, a: "x" });
    const r = await rightOrNotImplemented(c.find({ a: "X" }, { collation: { locale: "en", strength: 2 } }).toArray());
    if ("value" in r) expect(r.value).toEqual([{ _id: 1, a: "x" }]);
  });

  it("an update with a collation: applied as collated or refused with 238, never applied uncollated", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ _id: 1, a: "x" });
    const r = await rightOrNotImplemented(c.updateOne({ a: "X" }, { $set: { b: 1 } }, { collation: { locale: "en", strength: 2 } }));
    expect(await c.findOne({ _id: 1 })).toEqual("value" in r ? { _id: 1, a: "x", b: 1 } : { _id: 1, a: "x" });
  });

  it("aggregate with $out: the output collection written, or 238 and nothing written", async () => {
    const db = h.client.db(uniqueDb());
    await coll(db, "c").insertOne({ _id: 1 });
    for (const pipeline of [[{ $match: {} }, { $out: "copy" }], [{ $out: "copy" }]]) {
      const r = await rightOrNotImplemented(coll(db, "c").aggregate(pipeline).toArray());
      const names = (await db.listCollections().toArray()).map((x) => x.name).sort();
      if ("value" in r) expect(await coll(db, "copy").find().toArray()).toEqual([{ _id: 1 }]);
      else expect(names).toEqual(["c"]);
    }
  });

  it("a transaction: committed, or its first write refused with 238 and nothing written", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ _id: 0 });
    const session = h.client.startSession();
    let r;
    try {
      session.startTransaction();
      r = await rightOrNotImplemented(c.insertOne({ _id: 1 }, { session }));
      if ("value" in r) await session.commitTransaction();
    } finally {
      if (session.inTransaction()) await session.abortTransaction().catch(squashError);
      await session.endSession();
    }
    expect(await c.countDocuments()).toBe("value" in r ? 2 : 1);
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
