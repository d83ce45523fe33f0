/** Collections, databases and indexes: create, collMod, list*, createIndex, drop, dropDatabase, rename. */
import { describe, expect, it } from "vitest";
import { coll, expectCode, uniqueDb, useBackend } from "./helpers";

describe("collections, databases and indexes", () => {
  const h = useBackend();
  const freshDb = () => h.client.db(uniqueDb());

  it("create makes an empty collection that listCollections shows with its options", async () => {
    const db = freshDb();
    await db.createCollection("a", { changeStreamPreAndPostImages: { enabled: true } });
    const [info] = await db.listCollections({ name: "a" }).toArray();
    expect(info!.name).toBe("a");
    expect(info!.type).toBe("collection");
    expect((info as { options: unknown }).options).toEqual({ changeStreamPreAndPostImages: { enabled: true } });
    expect(await db.collection("a").countDocuments()).toBe(0);
  });

  it("create on an existing collection fails with 48 NamespaceExists", async () => {
    const db = freshDb();
    await db.createCollection("a");
    await expectCode(db.createCollection("a"), 48);
  });

  it("listCollections lists every collection, also by name only", async () => {
    const db = freshDb();
    await db.createCollection("x");
    await coll(db, "y").insertOne({});
    expect((await db.listCollections().toArray()).map((c) => c.name).sort()).toEqual(["x", "y"]);
    expect((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).sort()).toEqual(["x", "y"]);
  });

  it("collMod changes the collection's options", async () => {
    const db = freshDb();
    await db.createCollection("a");
    await db.command({ collMod: "a", changeStreamPreAndPostImages: { enabled: true } });
    const [info] = await db.listCollections({ name: "a" }).toArray();
    expect((info as { options: unknown }).options).toEqual({ changeStreamPreAndPostImages: { enabled: true } });
  });

  it("collMod on a missing collection fails with 26 NamespaceNotFound", async () => {
    await expectCode(freshDb().command({ collMod: "missing", changeStreamPreAndPostImages: { enabled: true } }), 26);
  });

  it("createIndex creates an index that listIndexes shows next to _id_", async () => {
    const c = coll(freshDb(), "c");
    expect(await c.createIndex({ a: 1, b: -1 })).toBe("a_1_b_-1");
    const indexes = await c.listIndexes().toArray();
    expect(indexes.map((i) => [i.name, i.key])).toEqual([
      ["_id_", { _id: 1 }],
      ["a_1_b_-1", { a: 1, b: -1 }],
    ]);
  });

  it("a unique index rejects duplicates on insert and update with 11000", async () => {
    const c = coll(freshDb(), "c");
    await c.createIndex({ email: 1 }, { unique: true });
    await c.insertOne({ _id: 1, email: "a@x" });
    await c.insertOne({ _id: 2, email: "b@x" });
    const dup = await expectCode(c.insertOne({ _id: 3, email: "a@x" }), 11000);
    expect([dup.keyPattern, dup.keyValue]).toEqual([{ email: 1 }, { email: "a@x" }]);
    await expectCode(c.updateOne({ _id: 2 }, { $set: { email: "a@x" } }), 11000);
    // The failed writes changed nothing, and freed values can be reused.
    await c.updateOne({ _id: 1 }, { $set: { email: "c@x" } });
    await c.insertOne({ _id: 3, email: "a@x" });
    expect((await c.find().sort({ _id: 1 }).toArray()).map((d) => d.email)).toEqual(["c@x", "b@x", "a@x"]);
  });

  it("creating a unique index over existing duplicates fails with 11000", async () => {
    const c = coll(freshDb(), "c");
    await c.insertMany([{ k: 1 }, { k: 1 }]);
    await expectCode(c.createIndex({ k: 1 }, { unique: true }), 11000);
    expect((await c.listIndexes().toArray()).map((i) => i.name)).toEqual(["_id_"]);
  });

  it("dropIndex removes an index", async () => {
    const c = coll(freshDb(), "c");
    await c.createIndex({ k: 1 }, { unique: true });
    await c.dropIndex("k_1");
    await c.insertMany([{ k: 1 }, { k: 1 }]);
    expect((await c.listIndexes().toArray()).map((i) => i.name)).toEqual(["_id_"]);
  });

  it("listIndexes on a missing collection fails with 26 NamespaceNotFound", async () => {
    await expectCode(coll(freshDb(), "missing").listIndexes().toArray(), 26);
  });

  it("drop removes the collection and its documents", async () => {
    const db = freshDb();
    await coll(db, "c").insertOne({ _id: 1 });
    expect(await db.collection("c").drop()).toBe(true);
    expect(await db.listCollections().toArray()).toEqual([]);
    expect(await coll(db, "c").countDocuments()).toBe(0);
  });

  it("dropDatabase removes every collection of the database only", async () => {
    const db = freshDb();
    const other = freshDb();
    await coll(db, "a").insertOne({});
    await coll(db, "b").insertOne({});
    await coll(other, "a").insertOne({});
    expect(await db.dropDatabase()).toBe(true);
    expect(await db.listCollections().toArray()).toEqual([]);
    expect(await coll(other, "a").countDocuments()).toBe(1);
  });

  it("renameCollection moves documents and indexes to the new name", async () => {
    const db = freshDb();
    const c = coll(db, "old");
    await c.insertOne({ _id: 1, k: 1 });
    await c.createIndex({ k: 1 }, { unique: true });
    await c.rename("new");
    expect((await db.listCollections().toArray()).map((x) => x.name)).toEqual(["new"]);
    expect(await coll(db, "new").findOne()).toEqual({ _id: 1, k: 1 });
    await expectCode(coll(db, "new").insertOne({ k: 1 }), 11000);
  });

  it("renameCollection onto an existing collection fails with 48 unless dropTarget", async () => {
    const db = freshDb();
    await coll(db, "a").insertOne({ _id: "a" });
    await coll(db, "b").insertOne({ _id: "b" });
    await expectCode(coll(db, "a").rename("b"), 48);
    await coll(db, "a").rename("b", { dropTarget: true });
    expect(await coll(db, "b").find().toArray()).toEqual([{ _id: "a" }]);
  });

  it("renameCollection of a missing collection fails with 26 NamespaceNotFound", async () => {
    await expectCode(coll(freshDb(), "missing").rename("x"), 26);
  });
});
