/**
 * showExpandedEvents: the DDL events of MongoDB 7.0 (create, createIndexes, dropIndexes,
 * modify) and the expanded fields of rename and drop, as the manual's change-events pages
 * document them. Without the option none of these DDL events appear.
 */
import { describe, expect, it } from "vitest";
import { Timestamp, type UUID, type Document } from "mongodb";
import { coll, nextEvents, openStream, uniqueDb, useBackend } from "./helpers";

const common = () => ({ _id: { _data: expect.any(String) }, clusterTime: expect.any(Timestamp), wallTime: expect.any(Date) });
const ID_INDEX = { v: 2, key: { _id: 1 }, name: "_id_" };

describe("change events with showExpandedEvents", () => {
  const h = useBackend();
  const freshDb = () => h.client.db(uniqueDb());
  const uuidOf = async (dbName: string, name: string): Promise<UUID> => {
    const [info] = await h.client.db(dbName).listCollections({ name }).toArray();
    return (info as Document).info.uuid as UUID;
  };

  it("create: an explicit create, with the collection's UUID and its _id index", async () => {
    const db = freshDb();
    const stream = await openStream(db, [], { showExpandedEvents: true });
    await db.createCollection("c");
    const [e] = await nextEvents(stream, 1);
    expect(e).toEqual({
      ...common(),
      operationType: "create",
      collectionUUID: await uuidOf(db.databaseName, "c"),
      ns: { db: db.databaseName, coll: "c" },
      operationDescription: { idIndex: ID_INDEX },
    });
    await stream.close();
  });

  it("create: the implicit create of a first insert comes before the insert", async () => {
    const db = freshDb();
    const stream = await openStream(db, [], { showExpandedEvents: true });
    await coll(db, "c").insertOne({ _id: 1 });
    const [create, insert] = await nextEvents(stream, 2);
    const uuid = await uuidOf(db.databaseName, "c");
    expect(create).toMatchObject({ operationType: "create", collectionUUID: uuid, ns: { db: db.databaseName, coll: "c" } });
    expect(insert).toMatchObject({ operationType: "insert", collectionUUID: uuid, documentKey: { _id: 1 } });
    await stream.close();
  });

  it("create: the collection's options are in operationDescription", async () => {
    const db = freshDb();
    const stream = await openStream(db, [], { showExpandedEvents: true });
    await db.createCollection("c", { changeStreamPreAndPostImages: { enabled: true } });
    const [e] = await nextEvents(stream, 1);
    expect(e!.operationType).toBe("create");
    expect(e!.operationDescription).toMatchObject({ changeStreamPreAndPostImages: { enabled: true }, idIndex: ID_INDEX });
    await stream.close();
  });

  it("create of a view: its definition, no collectionUUID (a view has none)", async () => {
    const db = freshDb();
    await db.createCollection("src");
    const stream = await openStream(db, [], { showExpandedEvents: true });
    await db.createCollection("v", { viewOn: "src", pipeline: [{ $match: { a: 1 } }] });
    await db.dropCollection("v");
    const [create, drop] = await nextEvents(stream, 2);
    expect(create).toEqual({
      ...common(),
      operationType: "create",
      ns: { db: db.databaseName, coll: "v" },
      operationDescription: { viewOn: "src", pipeline: [{ $match: { a: 1 } }] },
    });
    expect(drop).toEqual({ ...common(), operationType: "drop", ns: { db: db.databaseName, coll: "v" } });
    await stream.close();
  });

  it("createIndexes and dropIndexes: the index spec in operationDescription.indexes", async () => {
    const db = freshDb();
    const c = coll(db, "c");
    await c.insertOne({ _id: 1, a: 1 });
    const uuid = await uuidOf(db.databaseName, "c");
    const stream = await openStream(c, [], { showExpandedEvents: true });
    await c.createIndex({ a: 1 }, { unique: true });
    await c.dropIndex("a_1");
    const [created, dropped] = await nextEvents(stream, 2);
    const spec = { v: 2, key: { a: 1 }, name: "a_1", unique: true };
    const ns = { db: db.databaseName, coll: "c" };
    expect(created).toEqual({ ...common(), operationType: "createIndexes", collectionUUID: uuid, ns, operationDescription: { indexes: [spec] } });
    expect(dropped).toEqual({ ...common(), operationType: "dropIndexes", collectionUUID: uuid, ns, operationDescription: { indexes: [spec] } });
    await stream.close();
  });

  it("createIndexes on an empty collection", async () => {
    const db = freshDb();
    await db.createCollection("c");
    const stream = await openStream(db, [], { showExpandedEvents: true });
    await coll(db, "c").createIndex({ b: -1 });
    const [e] = await nextEvents(stream, 1);
    expect(e).toMatchObject({ operationType: "createIndexes", operationDescription: { indexes: [{ v: 2, key: { b: -1 }, name: "b_-1" }] } });
    await stream.close();
  });

  it("modify: what collMod changed, and stateBeforeChange with the options as they were", async () => {
    const db = freshDb();
    await db.createCollection("c");
    const uuid = await uuidOf(db.databaseName, "c");
    const stream = await openStream(coll(db, "c"), [], { showExpandedEvents: true });
    await db.command({ collMod: "c", changeStreamPreAndPostImages: { enabled: true } });
    await db.command({ collMod: "c", changeStreamPreAndPostImages: { enabled: false } });
    const [first, second] = await nextEvents(stream, 2);
    const ns = { db: db.databaseName, coll: "c" };
    expect(first).toEqual({
      ...common(),
      operationType: "modify",
      collectionUUID: uuid,
      ns,
      operationDescription: { changeStreamPreAndPostImages: { enabled: true } },
      stateBeforeChange: { collectionOptions: { uuid } },
    });
    expect(second).toEqual({
      ...common(),
      operationType: "modify",
      collectionUUID: uuid,
      ns,
      operationDescription: { changeStreamPreAndPostImages: { enabled: false } },
      stateBeforeChange: { collectionOptions: { uuid, changeStreamPreAndPostImages: { enabled: true } } },
    });
    await stream.close();
  });

  it("rename: operationDescription has the target, and dropTarget the UUID of the collection it replaced", async () => {
    const db = freshDb();
    await coll(db, "a").insertOne({ _id: 1 });
    await coll(db, "b").insertOne({ _id: 2 });
    await coll(db, "c").insertOne({ _id: 3 });
    const [uuidA, uuidB, uuidC] = await Promise.all(["a", "b", "c"].map((n) => uuidOf(db.databaseName, n)));
    const stream = await openStream(db, [], { showExpandedEvents: true });
    await h.client.db("admin").command({ renameCollection: `${db.databaseName}.a`, to: `${db.databaseName}.x` });
    await h.client.db("admin").command({ renameCollection: `${db.databaseName}.b`, to: `${db.databaseName}.c`, dropTarget: true });
    const [plain, replacing] = await nextEvents(stream, 2);
    const to = (name: string) => ({ db: db.databaseName, coll: name });
    expect(plain).toEqual({ ...common(), operationType: "rename", collectionUUID: uuidA, ns: to("a"), to: to("x"), operationDescription: { to: to("x") } });
    expect(replacing).toEqual({
      ...common(),
      operationType: "rename",
      collectionUUID: uuidB,
      ns: to("b"),
      to: to("c"),
      operationDescription: { to: to("c"), dropTarget: uuidC },
    });
    await stream.close();
  });

  it("drop: with collectionUUID", async () => {
    const db = freshDb();
    await coll(db, "c").insertOne({ _id: 1 });
    const uuid = await uuidOf(db.databaseName, "c");
    const stream = await openStream(db, [], { showExpandedEvents: true });
    await db.dropCollection("c");
    const [e] = await nextEvents(stream, 1);
    expect(e).toEqual({ ...common(), operationType: "drop", collectionUUID: uuid, ns: { db: db.databaseName, coll: "c" } });
    await stream.close();
  });

  it("without showExpandedEvents: no DDL events, and rename has only the top-level `to`", async () => {
    const db = freshDb();
    const stream = await openStream(db);
    await db.createCollection("c");
    await coll(db, "c").createIndex({ a: 1 });
    await db.command({ collMod: "c", changeStreamPreAndPostImages: { enabled: true } });
    await coll(db, "c").dropIndex("a_1");
    await db.createCollection("v", { viewOn: "c", pipeline: [] });
    await db.dropCollection("v");
    await h.client.db("admin").command({ renameCollection: `${db.databaseName}.c`, to: `${db.databaseName}.d` });
    const [e] = await nextEvents(stream, 1);
    expect(e).toEqual({ ...common(), operationType: "rename", ns: { db: db.databaseName, coll: "c" }, to: { db: db.databaseName, coll: "d" } });
    await stream.close();
  });
});
