/** Reads through the driver: find and its options, getMore batching, counts, distinct, aggregate. */
import { beforeAll, describe, expect, it } from "vitest";
import { coll, recordCommands, uniqueDb, useBackend } from "./helpers";

describe("CRUD reads", () => {
  const h = useBackend({}, { monitorCommands: true });
  const docs = Array.from({ length: 10 }, (_, i) => ({ _id: i, n: i, odd: i % 2 === 1, tag: `t${i % 3}`, nested: { v: 10 - i } }));
  let c: ReturnType<typeof coll>;

  beforeAll(async () => {
    c = coll(h.client.db(uniqueDb()), "c");
    await c.insertMany(docs);
  });

  it("find with a filter returns exactly the matching documents", async () => {
    expect((await c.find({ odd: true }).toArray()).map((d) => d._id)).toEqual([1, 3, 5, 7, 9]);
    expect((await c.find({ n: { $gte: 4, $lt: 6 } }).toArray()).map((d) => d._id)).toEqual([4, 5]);
    expect((await c.find({ "nested.v": 1 }).toArray()).map((d) => d._id)).toEqual([9]);
  });

  it("find with an inclusion projection keeps _id and the named fields", async () => {
    expect(await c.find({ _id: 2 }, { projection: { n: 1 } }).toArray()).toEqual([{ _id: 2, n: 2 }]);
  });

  it("find with an exclusion projection drops the named fields", async () => {
    expect(await c.find({ _id: 2 }, { projection: { _id: 0, nested: 0, odd: 0 } }).toArray()).toEqual([{ n: 2, tag: "t2" }]);
  });

  it("find sorts, skips and limits", async () => {
    expect((await c.find().sort({ n: -1 }).toArray()).map((d) => d._id)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect((await c.find().sort({ tag: 1, n: -1 }).limit(4).toArray()).map((d) => d._id)).toEqual([9, 6, 3, 0]);
    expect((await c.find().sort({ n: 1 }).skip(3).limit(2).toArray()).map((d) => d._id)).toEqual([3, 4]);
  });

  it("find with batchSize returns everything through several getMores", async () => {
    const rec = recordCommands(h.client);
    try {
      const all = await c.find().sort({ _id: 1 }).batchSize(3).toArray();
      expect(all.map((d) => d._id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    } finally {
      rec.stop();
    }
    // 3 in the first batch, then 3 + 3 + 1: three getMores, no killCursors needed.
    expect(rec.names().filter((n) => n === "getMore")).toHaveLength(3);
  });

  it("find with limit and batchSize stops at the limit", async () => {
    expect((await c.find().sort({ _id: 1 }).batchSize(2).limit(5).toArray()).map((d) => d._id)).toEqual([0, 1, 2, 3, 4]);
  });

  it("findOne returns the first match or null", async () => {
    expect(await c.findOne({ _id: 3 }, { projection: { n: 1 } })).toEqual({ _id: 3, n: 3 });
    expect(await c.findOne({ _id: 42 })).toBeNull();
  });

  it("countDocuments counts matches, honouring skip and limit", async () => {
    expect(await c.countDocuments()).toBe(10);
    expect(await c.countDocuments({ odd: true })).toBe(5);
    expect(await c.countDocuments({}, { skip: 8 })).toBe(2);
    expect(await c.countDocuments({}, { limit: 4 })).toBe(4);
  });

  it("estimatedDocumentCount reports the collection size", async () => {
    expect(await c.estimatedDocumentCount()).toBe(10);
  });

  it("countDocuments on a missing collection is 0", async () => {
    expect(await coll(c.db, "nope").countDocuments()).toBe(0);
  });

  it("distinct returns each value once, with and without a filter", async () => {
    expect((await c.distinct("tag")).sort()).toEqual(["t0", "t1", "t2"]);
    expect((await c.distinct("tag", { odd: true })).sort()).toEqual(["t0", "t1", "t2"]);
    expect((await c.distinct("n", { n: { $lt: 3 } })).sort()).toEqual([0, 1, 2]);
  });

  it("distinct flattens array values", async () => {
    const a = coll(c.db, "arrays");
    await a.insertMany([{ v: [1, 2] }, { v: [2, 3] }, { v: 4 }]);
    expect((await a.distinct("v")).sort()).toEqual([1, 2, 3, 4]);
  });

  it("aggregate runs $match, $group and $sort", async () => {
    const out = await c
      .aggregate([{ $match: { n: { $gte: 3 } } }, { $group: { _id: "$tag", total: { $sum: "$n" }, count: { $sum: 1 } } }, { $sort: { _id: 1 } }])
      .toArray();
    expect(out).toEqual([
      { _id: "t0", total: 3 + 6 + 9, count: 3 },
      { _id: "t1", total: 4 + 7, count: 2 },
      { _id: "t2", total: 5 + 8, count: 2 },
    ]);
  });

  it("aggregate with a small batchSize pages through getMore", async () => {
    const out = await c.aggregate([{ $sort: { _id: -1 } }, { $project: { _id: 1 } }], { batchSize: 4 }).toArray();
    expect(out.map((d) => d._id)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  });

  it("aggregate $lookup reads another collection of the same database", async () => {
    const other = coll(c.db, "names");
    await other.insertMany([
      { _id: "t0", label: "zero" },
      { _id: "t1", label: "one" },
    ]);
    const out = await c
      .aggregate([{ $match: { _id: 1 } }, { $lookup: { from: "names", localField: "tag", foreignField: "_id", as: "names" } }, { $project: { names: 1 } }])
      .toArray();
    expect(out).toEqual([{ _id: 1, names: [{ _id: "t1", label: "one" }] }]);
  });
});
