/** Writes through the driver: insert, update, replace, delete, findOneAnd*. */
import { describe, expect, it } from "vitest";
import { MongoBulkWriteError, MongoServerError, ObjectId } from "mongodb";
import { coll, uniqueDb, useBackend } from "./helpers";

describe("CRUD writes", () => {
  const h = useBackend();
  const fresh = () => coll(h.client.db(uniqueDb()), "c");

  describe("insert", () => {
    it("insertOne assigns an ObjectId _id when none is given", async () => {
      const c = fresh();
      const res = await c.insertOne({ a: 1 });
      expect(res.insertedId).toBeInstanceOf(ObjectId);
      expect(await c.findOne({})).toEqual({ _id: res.insertedId, a: 1 });
    });

    it("stores _id first even when the client sends it last", async () => {
      const c = fresh();
      await c.insertOne({ a: 1, _id: 7 });
      expect(Object.keys((await c.findOne({}))!)).toEqual(["_id", "a"]);
    });

    it("insertMany inserts every document in order", async () => {
      const c = fresh();
      const res = await c.insertMany([{ _id: 1 }, { _id: 2 }, { _id: 3 }]);
      expect(res.insertedCount).toBe(3);
      expect(await c.find().toArray()).toEqual([{ _id: 1 }, { _id: 2 }, { _id: 3 }]);
    });

    it("insertOne with a duplicate _id fails with 11000", async () => {
      const c = fresh();
      await c.insertOne({ _id: 1 });
      const err = await c.insertOne({ _id: 1 }).catch((e) => e);
      expect(err).toBeInstanceOf(MongoServerError);
      expect(err.code).toBe(11000);
      expect(err.codeName).toBe("DuplicateKey");
      expect(err.message).toMatch(/E11000 duplicate key error/);
      expect([err.keyPattern, err.keyValue]).toEqual([{ _id: 1 }, { _id: 1 }]);
    });

    it("ordered insertMany stops at the first duplicate and reports one writeError", async () => {
      const c = fresh();
      const err: MongoBulkWriteError = await c.insertMany([{ _id: 1 }, { _id: 1 }, { _id: 2 }], { ordered: true }).catch((e) => e);
      expect(err).toBeInstanceOf(MongoBulkWriteError);
      expect(err.result.insertedCount).toBe(1);
      const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      expect(errors.map((e) => [e.index, e.code])).toEqual([[1, 11000]]);
      expect(await c.find().toArray()).toEqual([{ _id: 1 }]);
    });

    it("unordered insertMany continues past duplicates and reports each", async () => {
      const c = fresh();
      const err: MongoBulkWriteError = await c.insertMany([{ _id: 1 }, { _id: 1 }, { _id: 2 }, { _id: 2 }, { _id: 3 }], { ordered: false }).catch((e) => e);
      expect(err).toBeInstanceOf(MongoBulkWriteError);
      expect(err.result.insertedCount).toBe(3);
      const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      expect(errors.map((e) => [e.index, e.code])).toEqual([
        [1, 11000],
        [3, 11000],
      ]);
      expect(await c.find().sort({ _id: 1 }).toArray()).toEqual([{ _id: 1 }, { _id: 2 }, { _id: 3 }]);
    });
  });

  describe("update", () => {
    it("updateOne applies $set, $inc, $push and $unset to one matching document", async () => {
      const c = fresh();
      await c.insertMany([
        { _id: 1, k: "x", n: 1, tags: ["a"], gone: true },
        { _id: 2, k: "x", n: 1, tags: [], gone: true },
      ]);
      const res = await c.updateOne({ k: "x" }, { $set: { s: "hi" }, $inc: { n: 2 }, $push: { tags: "b" }, $unset: { gone: "" } } as never);
      expect([res.matchedCount, res.modifiedCount, res.upsertedId]).toEqual([1, 1, null]);
      expect(await c.find().sort({ _id: 1 }).toArray()).toEqual([
        { _id: 1, k: "x", n: 3, tags: ["a", "b"], s: "hi" },
        { _id: 2, k: "x", n: 1, tags: [], gone: true },
      ]);
    });

    it("updateMany updates every match and counts them", async () => {
      const c = fresh();
      await c.insertMany([
        { _id: 1, g: 1 },
        { _id: 2, g: 1 },
        { _id: 3, g: 2 },
      ]);
      const res = await c.updateMany({ g: 1 }, { $set: { seen: true } });
      expect([res.matchedCount, res.modifiedCount]).toEqual([2, 2]);
      expect(await c.countDocuments({ seen: true })).toBe(2);
    });

    it("a no-op update matches but does not modify", async () => {
      const c = fresh();
      await c.insertOne({ _id: 1, a: 1 });
      const res = await c.updateOne({ _id: 1 }, { $set: { a: 1 } });
      expect([res.matchedCount, res.modifiedCount]).toEqual([1, 0]);
    });

    it("upsert inserts a document built from the query's equality fields", async () => {
      const c = fresh();
      const res = await c.updateOne({ _id: 5, k: "v" }, { $set: { n: 1 }, $setOnInsert: { created: true } }, { upsert: true });
      expect([res.matchedCount, res.modifiedCount, res.upsertedCount, res.upsertedId]).toEqual([0, 0, 1, 5]);
      expect(await c.findOne({ _id: 5 })).toEqual({ _id: 5, k: "v", n: 1, created: true });
    });

    it("upsert on an existing document updates it and ignores $setOnInsert", async () => {
      const c = fresh();
      await c.insertOne({ _id: 5, n: 0 });
      const res = await c.updateOne({ _id: 5 }, { $set: { n: 1 }, $setOnInsert: { created: true } }, { upsert: true });
      expect([res.matchedCount, res.upsertedCount]).toEqual([1, 0]);
      expect(await c.findOne({ _id: 5 })).toEqual({ _id: 5, n: 1 });
    });

    it("applies arrayFilters to the matching array elements only", async () => {
      const c = fresh();
      await c.insertOne({ _id: 1, grades: [95, 80, 100, 70] });
      await c.updateOne({ _id: 1 }, { $set: { "grades.$[g]": 0 } }, { arrayFilters: [{ g: { $gte: 90 } }] });
      expect(await c.findOne({ _id: 1 })).toEqual({ _id: 1, grades: [0, 80, 0, 70] });
    });

    it("applies a pipeline-style update", async () => {
      const c = fresh();
      await c.insertOne({ _id: 1, a: 2, b: 3, drop: 1 });
      await c.updateOne({ _id: 1 }, [{ $set: { sum: { $add: ["$a", "$b"] } } }, { $unset: "drop" }]);
      expect(await c.findOne({ _id: 1 })).toEqual({ _id: 1, a: 2, b: 3, sum: 5 });
    });

    it("refuses to change _id (66 ImmutableField)", async () => {
      const c = fresh();
      await c.insertOne({ _id: 1 });
      const err = await c.updateOne({ _id: 1 }, { $set: { _id: 2 } }).catch((e) => e);
      expect(err.code).toBe(66);
      expect(await c.findOne({})).toEqual({ _id: 1 });
    });

    it("accepts $set of _id to its current value (a no-op)", async () => {
      const c = fresh();
      await c.insertOne({ _id: 1, a: 1 });
      const res = await c.updateOne({ _id: 1 }, { $set: { _id: 1, a: 2 } });
      expect([res.matchedCount, res.modifiedCount]).toEqual([1, 1]);
      expect(await c.findOne({})).toEqual({ _id: 1, a: 2 });
    });

    it("replaceOne replaces the whole document but keeps _id", async () => {
      const c = fresh();
      await c.insertOne({ _id: 1, a: 1, b: 2 });
      const res = await c.replaceOne({ _id: 1 }, { c: 3 });
      expect([res.matchedCount, res.modifiedCount]).toEqual([1, 1]);
      expect(await c.findOne({ _id: 1 })).toEqual({ _id: 1, c: 3 });
    });

    it("replaceOne with upsert inserts the replacement under the query's _id", async () => {
      const c = fresh();
      const res = await c.replaceOne({ _id: 9 }, { c: 3 }, { upsert: true });
      expect(res.upsertedId).toBe(9);
      expect(await c.findOne({ _id: 9 })).toEqual({ _id: 9, c: 3 });
    });
  });

  describe("delete", () => {
    it("deleteOne removes exactly one match", async () => {
      const c = fresh();
      await c.insertMany([
        { _id: 1, g: 1 },
        { _id: 2, g: 1 },
      ]);
      expect((await c.deleteOne({ g: 1 })).deletedCount).toBe(1);
      expect(await c.countDocuments()).toBe(1);
    });

    it("deleteMany removes every match", async () => {
      const c = fresh();
      await c.insertMany([
        { _id: 1, g: 1 },
        { _id: 2, g: 1 },
        { _id: 3, g: 2 },
      ]);
      expect((await c.deleteMany({ g: 1 })).deletedCount).toBe(2);
      expect(await c.find().toArray()).toEqual([{ _id: 3, g: 2 }]);
    });
  });

  describe("findOneAnd*", () => {
    it("findOneAndUpdate returns the document before the update by default", async () => {
      const c = fresh();
      await c.insertOne({ _id: 1, n: 1 });
      expect(await c.findOneAndUpdate({ _id: 1 }, { $inc: { n: 1 } })).toEqual({ _id: 1, n: 1 });
      expect(await c.findOne({ _id: 1 })).toEqual({ _id: 1, n: 2 });
    });

    it("findOneAndUpdate with returnDocument 'after' returns the updated document", async () => {
      const c = fresh();
      await c.insertOne({ _id: 1, n: 1 });
      expect(await c.findOneAndUpdate({ _id: 1 }, { $inc: { n: 1 } }, { returnDocument: "after" })).toEqual({ _id: 1, n: 2 });
    });

    it("findOneAndUpdate honours sort when several documents match", async () => {
      const c = fresh();
      await c.insertMany([
        { _id: 1, n: 5 },
        { _id: 2, n: 9 },
      ]);
      expect(await c.findOneAndUpdate({}, { $set: { hit: true } }, { sort: { n: -1 }, returnDocument: "after" })).toEqual({ _id: 2, n: 9, hit: true });
    });

    it("findOneAndUpdate with upsert inserts; 'before' is then null and 'after' the new document", async () => {
      const c = fresh();
      expect(await c.findOneAndUpdate({ _id: 1 }, { $set: { n: 1 } }, { upsert: true })).toBeNull();
      expect(await c.findOneAndUpdate({ _id: 2 }, { $set: { n: 2 } }, { upsert: true, returnDocument: "after" })).toEqual({ _id: 2, n: 2 });
      const meta = await c.findOneAndUpdate({ _id: 3 }, { $set: { n: 3 } }, { upsert: true, includeResultMetadata: true });
      expect(meta.lastErrorObject).toEqual({ n: 1, updatedExisting: false, upserted: 3 });
    });

    it("findOneAndUpdate on no match without upsert returns null and changes nothing", async () => {
      const c = fresh();
      expect(await c.findOneAndUpdate({ _id: 1 }, { $set: { n: 1 } })).toBeNull();
      expect(await c.countDocuments()).toBe(0);
    });

    it("findOneAndReplace returns before/after as asked", async () => {
      const c = fresh();
      await c.insertOne({ _id: 1, a: 1 });
      expect(await c.findOneAndReplace({ _id: 1 }, { b: 2 })).toEqual({ _id: 1, a: 1 });
      expect(await c.findOneAndReplace({ _id: 1 }, { c: 3 }, { returnDocument: "after" })).toEqual({ _id: 1, c: 3 });
    });

    it("findOneAndReplace with upsert inserts the replacement", async () => {
      const c = fresh();
      expect(await c.findOneAndReplace({ _id: 4 }, { z: 1 }, { upsert: true, returnDocument: "after" })).toEqual({ _id: 4, z: 1 });
    });

    it("findOneAndDelete returns the removed document (with projection)", async () => {
      const c = fresh();
      await c.insertMany([{ _id: 1, a: 1, b: 1 }, { _id: 2 }]);
      expect(await c.findOneAndDelete({ _id: 1 }, { projection: { a: 1 } })).toEqual({ _id: 1, a: 1 });
      expect(await c.findOneAndDelete({ _id: 1 })).toBeNull();
      expect(await c.countDocuments()).toBe(1);
    });
  });
});
