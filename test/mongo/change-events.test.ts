/** Change event shapes, one per operation type, as MongoDB 7.0 documents them. */
import { describe, expect, it } from "vitest";
import { Timestamp } from "mongodb";
import { coll, nextEvents, openStream, uniqueDb, useBackend } from "./helpers";

const common = () => ({ _id: { _data: expect.any(String) }, clusterTime: expect.any(Timestamp), wallTime: expect.any(Date) });

describe("change events", () => {
  const h = useBackend();
  const fresh = () => coll(h.client.db(uniqueDb()), "c");

  it("insert: fullDocument, ns and documentKey", async () => {
    const c = fresh();
    const stream = await openStream(c);
    await c.insertOne({ _id: 1, a: "x" });
    const [e] = await nextEvents(stream, 1);
    expect(e).toEqual({ ...common(), operationType: "insert", fullDocument: { _id: 1, a: "x" }, ns: { db: c.dbName, coll: "c" }, documentKey: { _id: 1 } });
    await stream.close();
  });

  it("update: updatedFields and removedFields, no fullDocument by default", async () => {
    const c = fresh();
    await c.insertOne({ _id: 1, a: 1, n: 1, nested: { x: 0, y: 0 }, gone: true });
    const stream = await openStream(c);
    await c.updateOne({ _id: 1 }, { $set: { a: 2, "nested.x": 1 }, $inc: { n: 1 }, $unset: { gone: "" } });
    const [e] = await nextEvents(stream, 1);
    expect(e).toEqual({
      ...common(),
      operationType: "update",
      ns: { db: c.dbName, coll: "c" },
      documentKey: { _id: 1 },
      updateDescription: { updatedFields: { a: 2, "nested.x": 1, n: 2 }, removedFields: ["gone"], truncatedArrays: [] },
    });
    await stream.close();
  });

  it("update: $push onto a non-empty array names the appended elements by index", async () => {
    const c = fresh();
    await c.insertOne({ _id: 1, tags: ["a", "b"] });
    const stream = await openStream(c);
    await c.updateOne({ _id: 1 }, { $push: { tags: { $each: ["c", "d"] } } } as never);
    const [e] = await nextEvents(stream, 1);
    expect(e!.updateDescription).toEqual({ updatedFields: { "tags.2": "c", "tags.3": "d" }, removedFields: [], truncatedArrays: [] });
    await stream.close();
  });

  it("update: $set of a whole field reports the whole new value (even a shorter array)", async () => {
    const c = fresh();
    await c.insertOne({ _id: 1, arr: [1, 2, 3], obj: { x: 1, y: 1 } });
    const stream = await openStream(c);
    await c.updateOne({ _id: 1 }, { $set: { arr: [1], obj: { x: 1, y: 2 } } });
    const [e] = await nextEvents(stream, 1);
    expect(e!.updateDescription).toEqual({ updatedFields: { arr: [1], obj: { x: 1, y: 2 } }, removedFields: [], truncatedArrays: [] });
    await stream.close();
  });

  it("update: $set of a path under a missing field reports the created field", async () => {
    const c = fresh();
    await c.insertOne({ _id: 1 });
    const stream = await openStream(c);
    await c.updateOne({ _id: 1 }, { $set: { "a.b.c": 1 } });
    const [e] = await nextEvents(stream, 1);
    expect(e!.updateDescription.updatedFields).toEqual({ a: { b: { c: 1 } } });
    await stream.close();
  });

  it("update: a pipeline update that shortens an array reports truncatedArrays", async () => {
    const c = fresh();
    await c.insertOne({ _id: 1, arr: [1, 2, 3], keep: 1 });
    const stream = await openStream(c);
    await c.updateOne({ _id: 1 }, [{ $set: { arr: { $slice: ["$arr", 1] }, added: true } }]);
    const [e] = await nextEvents(stream, 1);
    expect(e!.updateDescription).toEqual({ updatedFields: { added: true }, removedFields: [], truncatedArrays: [{ field: "arr", newSize: 1 }] });
    await stream.close();
  });

  it("update: arrayFilters touching several elements report the whole array", async () => {
    const c = fresh();
    await c.insertOne({ _id: 1, grades: [95, 80, 100] });
    const stream = await openStream(c);
    await c.updateOne({ _id: 1 }, { $set: { "grades.$[g]": 0 } }, { arrayFilters: [{ g: { $gte: 90 } }] });
    await c.updateOne({ _id: 1 }, { $set: { "grades.$[g]": 1 } }, { arrayFilters: [{ g: 80 }] });
    const [several, one] = await nextEvents(stream, 2);
    expect(several!.updateDescription.updatedFields).toEqual({ grades: [0, 80, 0] });
    expect(one!.updateDescription.updatedFields).toEqual({ "grades.1": 1 });
    await stream.close();
  });

  it("update: disambiguatedPaths only with showExpandedEvents, array indices as integers", async () => {
    const c = fresh();
    await c.insertOne({ _id: 1, a: { "1": 1 }, b: [{ "1": 1 }] });
    const plain = await openStream(c);
    const expanded = await openStream(c, [], { showExpandedEvents: true });
    await c.updateOne({ _id: 1 }, { $set: { "a.1": 2, "b.0.1": 2 } });
    const [p] = await nextEvents(plain, 1);
    const [x] = await nextEvents(expanded, 1);
    expect(p!.updateDescription).not.toHaveProperty("disambiguatedPaths");
    expect(x!.updateDescription.disambiguatedPaths).toEqual({ "a.1": ["a", "1"], "b.0.1": ["b", 0, "1"] });
    expect(x!.collectionUUID).toBeDefined();
    await plain.close();
    await expanded.close();
  });

  it("a no-op update produces no event", async () => {
    const c = fresh();
    await c.insertOne({ _id: 1, a: 1 });
    const stream = await openStream(c);
    await c.updateOne({ _id: 1 }, { $set: { a: 1 } });
    await c.insertOne({ _id: 2 });
    const [e] = await nextEvents(stream, 1);
    expect([e!.operationType, e!.documentKey]).toEqual(["insert", { _id: 2 }]);
    await stream.close();
  });

  it("replace: the new fullDocument", async () => {
    const c = fresh();
    await c.insertOne({ _id: 1, a: 1 });
    const stream = await openStream(c);
    await c.replaceOne({ _id: 1 }, { b: 2 });
    const [e] = await nextEvents(stream, 1);
    expect(e).toEqual({ ...common(), operationType: "replace", fullDocument: { _id: 1, b: 2 }, ns: { db: c.dbName, coll: "c" }, documentKey: { _id: 1 } });
    await stream.close();
  });

  it("delete: documentKey only", async () => {
    const c = fresh();
    await c.insertOne({ _id: 1, a: 1 });
    const stream = await openStream(c);
    await c.deleteOne({ _id: 1 });
    const [e] = await nextEvents(stream, 1);
    expect(e).toEqual({ ...common(), operationType: "delete", ns: { db: c.dbName, coll: "c" }, documentKey: { _id: 1 } });
    await stream.close();
  });

  it("upserts are insert events; findOneAnd* produce update, replace and delete events", async () => {
    const c = fresh();
    const stream = await openStream(c);
    await c.updateOne({ _id: 1 }, { $set: { a: 1 } }, { upsert: true });
    await c.findOneAndUpdate({ _id: 1 }, { $set: { a: 2 } });
    await c.findOneAndReplace({ _id: 1 }, { b: 1 });
    await c.findOneAndDelete({ _id: 1 });
    const events = await nextEvents(stream, 4);
    expect(events.map((e) => e.operationType)).toEqual(["insert", "update", "replace", "delete"]);
    expect(events[0]!.fullDocument).toEqual({ _id: 1, a: 1 });
    expect(events[1]!.updateDescription.updatedFields).toEqual({ a: 2 });
    await stream.close();
  });

  it("insertMany / updateMany / deleteMany produce one event per document, in order", async () => {
    const c = fresh();
    const stream = await openStream(c);
    await c.insertMany([{ _id: 1 }, { _id: 2 }, { _id: 3 }]);
    await c.updateMany({}, { $set: { x: 1 } });
    await c.deleteMany({});
    const events = await nextEvents(stream, 9);
    expect(events.map((e) => `${e.operationType}:${e.documentKey._id}`)).toEqual([
      "insert:1",
      "insert:2",
      "insert:3",
      "update:1",
      "update:2",
      "update:3",
      "delete:1",
      "delete:2",
      "delete:3",
    ]);
    await stream.close();
  });

  it("drop: ns, on a database stream (which is not invalidated by it)", async () => {
    const db = h.client.db(uniqueDb());
    await coll(db, "c").insertOne({});
    const stream = await openStream(db);
    await db.collection("c").drop();
    const [e] = await nextEvents(stream, 1);
    expect(e).toEqual({ ...common(), operationType: "drop", ns: { db: db.databaseName, coll: "c" } });
    await stream.close();
  });

  it("rename: ns and to, on a database stream", async () => {
    const db = h.client.db(uniqueDb());
    await coll(db, "a").insertOne({});
    const stream = await openStream(db);
    await db.collection("a").rename("b");
    const [e] = await nextEvents(stream, 1);
    expect(e).toEqual({ ...common(), operationType: "rename", ns: { db: db.databaseName, coll: "a" }, to: { db: db.databaseName, coll: "b" } });
    await stream.close();
  });

  it("dropDatabase: ns with the database only, on a cluster stream", async () => {
    const db = h.client.db(uniqueDb());
    await coll(db, "c").insertOne({});
    const stream = await openStream(h.client, [{ $match: { "ns.db": db.databaseName } }]);
    await db.dropDatabase();
    const [drop, dropDatabase] = await nextEvents(stream, 2);
    expect(drop!.operationType).toBe("drop");
    expect(dropDatabase).toEqual({ ...common(), operationType: "dropDatabase", ns: { db: db.databaseName } });
    await stream.close();
  });

  it("invalidate: only _id, operationType, clusterTime and wallTime", async () => {
    const c = fresh();
    await c.insertOne({});
    const stream = await openStream(c);
    await c.drop();
    const [, e] = await nextEvents(stream, 2);
    expect(e).toEqual({ ...common(), operationType: "invalidate" });
    await stream.close();
  });

  it("events of one stream come in clusterTime order, each with a distinct token", async () => {
    const c = fresh();
    const stream = await openStream(c);
    for (let i = 0; i < 5; i++) await c.insertOne({ _id: i });
    const events = await nextEvents(stream, 5);
    for (let i = 1; i < events.length; i++) expect(events[i]!.clusterTime.greaterThan(events[i - 1]!.clusterTime)).toBe(true);
    expect(new Set(events.map((e) => e._id._data)).size).toBe(5);
    await stream.close();
  });
});
