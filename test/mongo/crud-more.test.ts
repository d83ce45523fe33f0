/**
 * The rest of the CRUD surface the specification tests use: `let` variables, views,
 * validators with errInfo, `_id` storage rules and null `_id`s, `$out`, `count` as the
 * driver sends it, `$listLocalSessions`, and pipeline-style updates with the change
 * events they produce.
 */
import { describe, expect, it } from "vitest";
import { MongoBulkWriteError, MongoServerError, type Document } from "mongodb";
import { coll, expectCode, nextEvents, openStream, recordCommands, uniqueDb, useBackend } from "./helpers";

describe("let variables", () => {
  const h = useBackend();
  const fresh = async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertMany([
      { _id: 1, x: "a" },
      { _id: 2, x: "b" },
      { _id: 3, x: "c" },
    ]);
    return c;
  };

  it("find: $$name in the filter's $expr and in the projection", async () => {
    const c = await fresh();
    const docs = await c.find({ $expr: { $eq: ["$_id", "$$id"] } }, { let: { id: 2, label: "two" }, projection: { _id: 0, label: "$$label" } }).toArray();
    expect(docs).toEqual([{ label: "two" }]);
  });

  it("aggregate: each variable is evaluated once, before the pipeline ($literal stays literal)", async () => {
    const c = await fresh();
    const docs = await c.aggregate([{ $project: { _id: 0, r: "$$r", s: "$$s" } }], { let: { r: { $rand: {} }, s: { $literal: "$x" } } }).toArray();
    expect(docs).toHaveLength(3);
    expect(new Set(docs.map((d) => d.r)).size).toBe(1);
    expect(typeof docs[0]!.r).toBe("number");
    expect(docs.every((d) => d.s === "$x")).toBe(true);
  });

  it("updateOne and updateMany: in the filter and in a pipeline update", async () => {
    const c = await fresh();
    const one = await c.updateOne({ $expr: { $eq: ["$_id", "$$id"] } }, [{ $set: { x: "$$value" } }], { let: { id: 1, value: "A" } });
    expect(one.modifiedCount).toBe(1);
    const many = await c.updateMany({ $expr: { $gt: ["$_id", "$$min"] } }, [{ $set: { tag: "$$tag" } }], { let: { min: 1, tag: "t" } });
    expect(many.modifiedCount).toBe(2);
    expect(await c.find({}, { sort: { _id: 1 } }).toArray()).toEqual([
      { _id: 1, x: "A" },
      { _id: 2, x: "b", tag: "t" },
      { _id: 3, x: "c", tag: "t" },
    ]);
  });

  it("deleteMany and findOneAndUpdate", async () => {
    const c = await fresh();
    const deleted = await c.deleteMany({ $expr: { $lt: ["$_id", "$$max"] } }, { let: { max: 3 } });
    expect(deleted.deletedCount).toBe(2);
    const updated = await c.findOneAndUpdate({ $expr: { $eq: ["$_id", "$$id"] } }, [{ $set: { x: "$$v" } }], {
      let: { id: 3, v: "C" },
      returnDocument: "after",
    });
    expect(updated).toEqual({ _id: 3, x: "C" });
  });

  it("an undefined variable fails the command", async () => {
    const c = await fresh();
    const err = await c
      .find({ $expr: { $eq: ["$_id", "$$missing"] } })
      .toArray()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(MongoServerError);
  });
});

describe("views", () => {
  const h = useBackend();
  const fresh = async () => {
    const db = h.client.db(uniqueDb());
    await coll(db, "src").insertMany([
      { _id: 1, n: 1, hidden: "x" },
      { _id: 2, n: 2, hidden: "y" },
      { _id: 3, n: 3, hidden: "z" },
    ]);
    await db.createCollection("v", { viewOn: "src", pipeline: [{ $match: { n: { $gt: 1 } } }, { $project: { hidden: 0 } }] });
    return db;
  };

  it("reads go through the view's pipeline: find, aggregate, count, estimatedDocumentCount, distinct", async () => {
    const db = await fresh();
    const v = coll(db, "v");
    expect(await v.find({}, { sort: { _id: 1 } }).toArray()).toEqual([
      { _id: 2, n: 2 },
      { _id: 3, n: 3 },
    ]);
    expect(await v.aggregate([{ $group: { _id: null, total: { $sum: "$n" } } }]).toArray()).toEqual([{ _id: null, total: 5 }]);
    expect(await v.countDocuments({ n: 3 })).toBe(1);
    expect(await v.estimatedDocumentCount()).toBe(2);
    expect((await v.distinct("n")).sort()).toEqual([2, 3]);
  });

  it("a view follows its source: a write to the source shows at the next read", async () => {
    const db = await fresh();
    await coll(db, "src").insertOne({ _id: 4, n: 4 });
    expect(await coll(db, "v").countDocuments()).toBe(3);
  });

  it("listCollections reports it as a view with its definition", async () => {
    const db = await fresh();
    const [info] = await db.listCollections({ name: "v" }).toArray();
    expect(info).toMatchObject({ name: "v", type: "view", options: { viewOn: "src", pipeline: [{ $match: { n: { $gt: 1 } } }, { $project: { hidden: 0 } }] } });
  });

  it("writes to a view fail with 166 CommandNotSupportedOnView", async () => {
    const db = await fresh();
    const err = await coll(db, "v")
      .insertOne({ _id: 9 })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((err as MongoServerError).code).toBe(166);
    await expectCode(coll(db, "v").updateOne({}, { $set: { a: 1 } }), 166);
    await expectCode(coll(db, "v").deleteOne({}), 166);
    await expectCode(coll(db, "v").createIndex({ n: 1 }), 166);
    await expectCode(coll(db, "v").listIndexes().toArray(), 166);
    expect(await coll(db, "src").countDocuments()).toBe(3);
  });
});

describe("document validation", () => {
  const h = useBackend();
  const withValidator = async (options: Document = {}) => {
    const db = h.client.db(uniqueDb());
    await db.createCollection("c", { validator: { x: { $type: "string" } }, ...options });
    return coll(db, "c");
  };

  it("an insert that breaks the validator fails with 121 and errInfo naming the document and the clause", async () => {
    const c = await withValidator();
    const err = await c.insertOne({ _id: 1, x: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MongoServerError);
    const e = err as MongoServerError;
    expect(e.code).toBe(121);
    expect(e.errInfo).toMatchObject({ failingDocumentId: 1, details: { operatorName: "$type", specifiedAs: { x: { $type: "string" } } } });
    expect(await c.countDocuments()).toBe(0);
  });

  it("an update that breaks it fails the same way and leaves the document as it was; a valid one passes", async () => {
    const c = await withValidator();
    await c.insertOne({ _id: 1, x: "ok" });
    const err = await c.updateOne({ _id: 1 }, { $set: { x: 5 } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as MongoServerError).code).toBe(121);
    expect((err as MongoServerError).errInfo).toMatchObject({ failingDocumentId: 1 });
    await expectCode(c.findOneAndUpdate({ _id: 1 }, { $set: { x: 6 } }), 121);
    await c.updateOne({ _id: 1 }, { $set: { x: "still ok" } });
    expect(await c.findOne({ _id: 1 })).toEqual({ _id: 1, x: "still ok" });
  });

  it("insertMany reports the failing document as a write error with errInfo", async () => {
    const c = await withValidator();
    const err = await c
      .insertMany(
        [
          { _id: 1, x: "a" },
          { _id: 2, x: 2 },
        ],
        { ordered: false },
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(MongoBulkWriteError);
    const [writeError] = (err as MongoBulkWriteError).writeErrors as unknown as Array<{ index: number; code: number; errInfo: Document }>;
    expect(writeError!.index).toBe(1);
    expect(writeError!.code).toBe(121);
    expect(writeError!.errInfo).toMatchObject({ failingDocumentId: 2 });
    expect(await c.countDocuments()).toBe(1);
  });

  it("bypassDocumentValidation and validationAction 'warn' let the document in", async () => {
    const strict = await withValidator();
    await strict.insertOne({ _id: 1, x: 1 }, { bypassDocumentValidation: true });
    expect(await strict.countDocuments()).toBe(1);
    const warn = await withValidator({ validationAction: "warn" });
    await warn.insertOne({ _id: 1, x: 1 });
    expect(await warn.countDocuments()).toBe(1);
  });

  it("validationLevel 'moderate' lets an already invalid document be updated", async () => {
    const c = await withValidator({ validationLevel: "moderate" });
    await c.insertOne({ _id: 1, x: 1 }, { bypassDocumentValidation: true });
    await c.insertOne({ _id: 2, x: "valid" });
    await c.updateOne({ _id: 1 }, { $set: { y: 1 } });
    expect(await c.findOne({ _id: 1 })).toEqual({ _id: 1, x: 1, y: 1 });
    await expectCode(c.findOneAndUpdate({ _id: 2 }, { $set: { x: 2 } }), 121);
  });

  it("a validator that is not a valid query is refused when it is set (2 BadValue)", async () => {
    const db = h.client.db(uniqueDb());
    await expectCode(db.createCollection("c", { validator: { x: { $bogus: 1 } } }), 2);
    await db.createCollection("d");
    await expectCode(db.command({ collMod: "d", validator: { x: { $bogus: 1 } } }), 2);
  });

  it("a validator set later with collMod applies to later writes", async () => {
    const db = h.client.db(uniqueDb());
    const c = coll(db, "c");
    await c.insertOne({ _id: 1, x: 1 });
    await db.command({ collMod: "c", validator: { x: { $type: "string" } } });
    await expectCode(c.findOneAndUpdate({ _id: 1 }, { $set: { x: 2 } }), 121);
  });
});

describe("_id values", () => {
  const h = useBackend();
  const fresh = () => coll(h.client.db(uniqueDb()), "c");

  it("a null _id is stored as null (the driver sends it only with forceServerObjectId)", async () => {
    const c = fresh();
    await c.insertOne({ _id: null as never, a: 1 }, { forceServerObjectId: true });
    expect(await c.countDocuments({ _id: { $type: "null" } })).toBe(1);
    await expectCode(c.insertOne({ _id: null as never }, { forceServerObjectId: true }), 11000);
  });

  it("an upsert whose query names _id: null inserts it with a null _id", async () => {
    const c = fresh();
    const r = await c.updateOne({ _id: null as never }, { $set: { a: 1 } }, { upsert: true });
    expect(r.upsertedCount).toBe(1);
    expect(await c.findOne({ _id: { $type: "null" } } as Document)).toEqual({ _id: null, a: 1 });
  });

  it("an _id holding a $-prefixed field, an array or a regex fails with 53 InvalidIdField", async () => {
    const c = fresh();
    await expectCode(c.insertOne({ _id: { $a: 1 } }), 53);
    await expectCode(c.insertOne({ _id: [1, 2] as never }), 53);
    await expectCode(c.insertOne({ _id: /x/ as never }), 53);
    await c.insertOne({ _id: { "a.b": 1 } });
    expect(await c.countDocuments()).toBe(1);
  });
});

describe("$out", () => {
  const h = useBackend();

  it("replaces the target's documents with the results and keeps its indexes", async () => {
    const db = h.client.db(uniqueDb());
    await coll(db, "src").insertMany([
      { _id: 1, n: 1 },
      { _id: 2, n: 2 },
    ]);
    await coll(db, "out").insertOne({ _id: "old" });
    await coll(db, "out").createIndex({ n: 1 });
    const returned = await coll(db, "src")
      .aggregate([{ $match: { n: 2 } }, { $out: "out" }])
      .toArray();
    expect(returned).toEqual([]);
    expect(await coll(db, "out").find().toArray()).toEqual([{ _id: 2, n: 2 }]);
    expect((await coll(db, "out").listIndexes().toArray()).map((i) => i.name).sort()).toEqual(["_id_", "n_1"]);
    const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).sort();
    expect(names).toEqual(["out", "src"]);
  });

  it("creates the target, also in another database", async () => {
    const db = h.client.db(uniqueDb());
    const other = uniqueDb();
    await coll(db, "src").insertOne({ _id: 1 });
    await coll(db, "src")
      .aggregate([{ $out: { db: other, coll: "copy" } }])
      .toArray();
    expect(await coll(h.client.db(other), "copy").find().toArray()).toEqual([{ _id: 1 }]);
  });

  it("on a duplicate _id the target is left as it was", async () => {
    const db = h.client.db(uniqueDb());
    await coll(db, "src").insertMany([
      { _id: 1, g: "a" },
      { _id: 2, g: "a" },
    ]);
    await coll(db, "out").insertOne({ _id: "old" });
    await expectCode(
      coll(db, "src")
        .aggregate([{ $project: { _id: "$g" } }, { $out: "out" }])
        .toArray(),
      11000,
    );
    expect(await coll(db, "out").find().toArray()).toEqual([{ _id: "old" }]);
  });
});

describe("count and sessions", () => {
  const h = useBackend({}, { monitorCommands: true });

  it("estimatedDocumentCount sends a `count` command; count passes query, skip and limit", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertMany([{ _id: 1 }, { _id: 2 }, { _id: 3 }, { _id: 4 }]);
    const rec = recordCommands(h.client);
    expect(await c.estimatedDocumentCount()).toBe(4);
    expect(await c.count({ _id: { $gt: 1 } }, { skip: 1, limit: 5 })).toBe(2);
    rec.stop();
    expect(rec.names()).toEqual(["count", "count"]);
    expect(rec.seen[1]!.command).toMatchObject({ count: "c", query: { _id: { $gt: 1 } }, skip: 1, limit: 5 });
    expect(await coll(h.client.db(uniqueDb()), "missing").estimatedDocumentCount()).toBe(0);
  });

  it("$listLocalSessions lists the session the command runs in, as {_id: {id, uid}, lastUse}", async () => {
    const session = h.client.startSession();
    try {
      const sessions = await h.client
        .db("admin")
        .aggregate([{ $listLocalSessions: {} }], { session })
        .toArray();
      // The driver hands out the id as a UUID in replies and as a subtype-4 Binary in session.id: compare bytes.
      const hex = (b: { buffer: Uint8Array }) => Buffer.from(b.buffer).toString("hex");
      const mine = sessions.find((s) => hex(s._id.id) === hex(session.id!.id));
      expect(mine).toBeDefined();
      expect(mine!._id.uid.buffer.length).toBe(32);
      expect(mine!.lastUse).toBeInstanceOf(Date);
    } finally {
      await session.endSession();
    }
  });
});

describe("pipeline-style updates", () => {
  const h = useBackend();
  const fresh = () => coll(h.client.db(uniqueDb()), "c");

  it("a pipeline that drops _id keeps the document's _id", async () => {
    const c = fresh();
    await c.insertOne({ _id: 1, x: 1, t: { u: { v: 1 } } });
    await c.updateOne({ _id: 1 }, [{ $replaceRoot: { newRoot: "$t" } }, { $addFields: { foo: 1 } }]);
    expect(await c.findOne({ _id: 1 })).toEqual({ _id: 1, u: { v: 1 }, foo: 1 });
  });

  it("a pipeline that changes _id fails with 66 ImmutableField", async () => {
    const c = fresh();
    await c.insertOne({ _id: 1 });
    await expectCode(c.updateOne({ _id: 1 }, [{ $set: { _id: 2 } }]), 66);
  });

  it("a small change is an update event; one that rewrites the document is a replace event with the new document", async () => {
    const c = fresh();
    await c.insertOne({ _id: 1, x: 1, y: 1, t: { u: { v: 1 } }, big: "b".repeat(200) });
    const stream = await openStream(c);
    await c.updateOne({ _id: 1 }, [{ $set: { x: 2 } }]);
    await c.updateOne({ _id: 1 }, [{ $replaceWith: { u: "$t.u", foo: 1 } }]);
    const [small, rewrite] = await nextEvents(stream, 2);
    expect(small).toMatchObject({ operationType: "update", documentKey: { _id: 1 }, updateDescription: { updatedFields: { x: 2 }, removedFields: [] } });
    expect(rewrite).toMatchObject({ operationType: "replace", documentKey: { _id: 1 }, fullDocument: { _id: 1, u: { v: 1 }, foo: 1 } });
    expect(rewrite!.updateDescription).toBeUndefined();
    await stream.close();
  });
});
