/**
 * Invalidation by stream level (docs: reference/change-events/invalidate;
 * change_stream_filter_helpers.cpp): a collection stream ends on drop or
 * rename of its collection (also a rename onto it) and on dropDatabase; a
 * database stream only on dropDatabase; a cluster stream never.
 */
import { describe, expect, it } from "vitest";
import type { ChangeStream, Document } from "mongodb";
import { coll, expectCode, nextEvents, openStream, uniqueDb, useBackend } from "./helpers";

const kinds = (events: Document[]) => events.map((e) => e.operationType);

/** After an invalidate the server closes the cursor: the stream yields nothing more. */
async function expectClosed(stream: ChangeStream<Document, Document>) {
  const next = await stream.tryNext().catch((e: Error) => e);
  expect(next === null || next instanceof Error).toBe(true);
  expect(stream.closed).toBe(true);
}

describe("invalidate, by stream level", () => {
  const h = useBackend();
  const freshDb = () => h.client.db(uniqueDb());

  describe("collection stream", () => {
    it("drop → drop, invalidate, then closed", async () => {
      const db = freshDb();
      await coll(db, "c").insertOne({ _id: 1 });
      const stream = await openStream(coll(db, "c"));
      await db.collection("c").drop();
      const events = await nextEvents(stream, 2);
      expect(kinds(events)).toEqual(["drop", "invalidate"]);
      expect(events[0]!.ns).toEqual({ db: db.databaseName, coll: "c" });
      await expectClosed(stream);
    });

    it("rename → rename (with to), invalidate", async () => {
      const db = freshDb();
      await coll(db, "c").insertOne({ _id: 1 });
      const stream = await openStream(coll(db, "c"));
      await db.collection("c").rename("d");
      const events = await nextEvents(stream, 2);
      expect(kinds(events)).toEqual(["rename", "invalidate"]);
      expect(events[0]!.to).toEqual({ db: db.databaseName, coll: "d" });
      await expectClosed(stream);
    });

    it("a rename onto the watched collection (dropTarget) → rename, invalidate", async () => {
      const db = freshDb();
      await coll(db, "target").insertOne({ _id: "old" });
      await coll(db, "source").insertOne({ _id: "new" });
      const stream = await openStream(coll(db, "target"));
      await db.collection("source").rename("target", { dropTarget: true });
      const events = await nextEvents(stream, 2);
      expect(kinds(events)).toEqual(["rename", "invalidate"]);
      expect([events[0]!.ns, events[0]!.to]).toEqual([
        { db: db.databaseName, coll: "source" },
        { db: db.databaseName, coll: "target" },
      ]);
      await expectClosed(stream);
    });

    it("dropDatabase → drop of the collection, invalidate (no dropDatabase event)", async () => {
      const db = freshDb();
      await coll(db, "c").insertOne({ _id: 1 });
      await coll(db, "other").insertOne({ _id: 1 });
      const stream = await openStream(coll(db, "c"));
      await db.dropDatabase();
      const events = await nextEvents(stream, 2);
      expect(kinds(events)).toEqual(["drop", "invalidate"]);
      expect(events[0]!.ns).toEqual({ db: db.databaseName, coll: "c" });
      await expectClosed(stream);
    });

    it("a stream on a collection that never existed stays open through dropDatabase", async () => {
      const db = freshDb();
      await coll(db, "other").insertOne({});
      const stream = await openStream(coll(db, "ghost"));
      await db.dropDatabase();
      await coll(db, "ghost").insertOne({ _id: 1 });
      const [e] = await nextEvents(stream, 1);
      expect([e!.operationType, e!.documentKey]).toEqual(["insert", { _id: 1 }]);
      await stream.close();
    });

    it("drops and renames of other collections do not concern it", async () => {
      const db = freshDb();
      await coll(db, "c").insertOne({ _id: 1 });
      await coll(db, "x").insertOne({ _id: 1 });
      await coll(db, "y").insertOne({ _id: 1 });
      const stream = await openStream(coll(db, "c"));
      await db.collection("x").drop();
      await db.collection("y").rename("z");
      await coll(db, "c").insertOne({ _id: 2 });
      expect(kinds(await nextEvents(stream, 1))).toEqual(["insert"]);
      await stream.close();
    });

    it("resumeAfter an invalidate token fails with 260; startAfter it opens a new stream", async () => {
      const db = freshDb();
      await coll(db, "c").insertOne({ _id: 1 });
      const stream = await openStream(coll(db, "c"));
      await db.collection("c").drop();
      const [, invalidate] = await nextEvents(stream, 2);
      await stream.close();

      await expectCode(openStream(coll(db, "c"), [], { resumeAfter: invalidate!._id }), 260);
      const after = await openStream(coll(db, "c"), [], { startAfter: invalidate!._id });
      await coll(db, "c").insertOne({ _id: "again" });
      const [e] = await nextEvents(after, 1);
      expect([e!.operationType, e!.documentKey]).toEqual(["insert", { _id: "again" }]);
      await after.close();
    });
  });

  describe("database stream", () => {
    it("drop and rename of its collections are plain events", async () => {
      const db = freshDb();
      await coll(db, "a").insertOne({});
      await coll(db, "b").insertOne({});
      const stream = await openStream(db);
      await db.collection("a").drop();
      await db.collection("b").rename("c");
      await coll(db, "c").insertOne({ _id: "still open" });
      expect(kinds(await nextEvents(stream, 3))).toEqual(["drop", "rename", "insert"]);
      await stream.close();
    });

    it("dropDatabase → a drop per collection, dropDatabase, invalidate, then closed", async () => {
      const db = freshDb();
      await coll(db, "a").insertOne({});
      await coll(db, "b").insertOne({});
      const stream = await openStream(db);
      await db.dropDatabase();
      const events = await nextEvents(stream, 4);
      expect(kinds(events)).toEqual(["drop", "drop", "dropDatabase", "invalidate"]);
      expect(
        events
          .slice(0, 2)
          .map((e) => e.ns.coll)
          .sort(),
      ).toEqual(["a", "b"]);
      expect(events[2]!.ns).toEqual({ db: db.databaseName });
      await expectClosed(stream);
    });

    it("dropDatabase of a database that does not exist changes nothing: the stream stays open", async () => {
      const db = freshDb();
      const stream = await openStream(db);
      await db.dropDatabase();
      await coll(db, "a").insertOne({ _id: "first write" });
      const [e] = await nextEvents(stream, 1);
      expect([e!.operationType, e!.documentKey]).toEqual(["insert", { _id: "first write" }]);
      await stream.close();
    });

    it("other databases do not concern it", async () => {
      const db = freshDb();
      const other = freshDb();
      await coll(other, "a").insertOne({});
      const stream = await openStream(db);
      await other.dropDatabase();
      await coll(db, "a").insertOne({ _id: "mine" });
      const [e] = await nextEvents(stream, 1);
      expect([e!.operationType, e!.ns.db]).toEqual(["insert", db.databaseName]);
      await stream.close();
    });
  });

  describe("cluster stream", () => {
    it("is never invalidated: drop, rename and dropDatabase are plain events", async () => {
      const db = freshDb();
      await coll(db, "a").insertOne({});
      await coll(db, "b").insertOne({});
      const stream = await openStream(h.client, [{ $match: { "ns.db": db.databaseName } }]);
      await db.collection("a").drop();
      await db.collection("b").rename("c");
      await db.dropDatabase();
      await coll(db, "again").insertOne({ _id: 1 });
      expect(kinds(await nextEvents(stream, 5))).toEqual(["drop", "rename", "drop", "dropDatabase", "insert"]);
      await stream.close();
    });

    it("sees every database", async () => {
      const [a, b] = [freshDb(), freshDb()];
      const stream = await openStream(h.client, [{ $match: { "ns.db": { $in: [a.databaseName, b.databaseName] } } }]);
      await coll(a, "x").insertOne({ _id: 1 });
      await coll(b, "y").insertOne({ _id: 2 });
      const events = await nextEvents(stream, 2);
      expect(events.map((e) => `${e.ns.db === a.databaseName ? "a" : "b"}.${e.ns.coll}`)).toEqual(["a.x", "b.y"]);
      await stream.close();
    });
  });
});
