/**
 * fullDocument and fullDocumentBeforeChange, with pre/post images enabled
 * (create or collMod with changeStreamPreAndPostImages) and disabled
 * (docs: changeStreams "Change Streams with Document Pre- and Post-Images";
 * spec test change-streams-pre_and_post_images.json).
 */
import { describe, expect, it } from "vitest";
import { coll, expectCode, nextEvents, openStream, uniqueDb, useBackend } from "./helpers";

describe("pre- and post-images", () => {
  const h = useBackend();

  /** A collection with one document {_id: 1, v: 1}, images enabled or not. */
  async function collection(images: boolean) {
    const db = h.client.db(uniqueDb());
    await db.createCollection("c", images ? { changeStreamPreAndPostImages: { enabled: true } } : {});
    const c = coll(db, "c");
    await c.insertOne({ _id: 1, v: 1 });
    return c;
  }

  /** Runs update, replace, delete on {_id: 1} and returns those three events. */
  async function threeChanges(c: ReturnType<typeof coll>, options: Record<string, unknown>) {
    const stream = await openStream(c, [], options);
    await c.updateOne({ _id: 1 }, { $set: { v: 2 } });
    await c.replaceOne({ _id: 1 }, { v: 3 });
    await c.deleteOne({ _id: 1 });
    const events = await nextEvents(stream, 3);
    await stream.close();
    return events;
  }

  describe("fullDocument", () => {
    it("default: update events carry no fullDocument; replace does", async () => {
      const [update, replace, del] = await threeChanges(await collection(true), {});
      expect("fullDocument" in update!).toBe(false);
      expect(replace!.fullDocument).toEqual({ _id: 1, v: 3 });
      expect("fullDocument" in del!).toBe(false);
    });

    it("updateLookup: the document as it is when the event is read", async () => {
      const c = await collection(false);
      const stream = await openStream(c, [], { fullDocument: "updateLookup" });
      await c.updateOne({ _id: 1 }, { $set: { v: 2 } });
      await c.updateOne({ _id: 1 }, { $set: { v: 3 } });
      const [first] = await nextEvents(stream, 1);
      // The lookup happens at read time, so the first update already sees the second.
      expect(first!.fullDocument).toEqual({ _id: 1, v: 3 });
      await stream.close();
    });

    it("updateLookup: null once the document is deleted", async () => {
      const c = await collection(false);
      const stream = await openStream(c, [], { fullDocument: "updateLookup" });
      await c.updateOne({ _id: 1 }, { $set: { v: 2 } });
      await c.deleteOne({ _id: 1 });
      const [update, del] = await nextEvents(stream, 2);
      expect(update!.fullDocument).toBeNull();
      expect(del!.operationType).toBe("delete");
      await stream.close();
    });

    it("whenAvailable with images enabled: the post-image of each update", async () => {
      const c = await collection(true);
      const stream = await openStream(c, [], { fullDocument: "whenAvailable" });
      await c.updateOne({ _id: 1 }, { $set: { v: 2 } });
      await c.updateOne({ _id: 1 }, { $set: { v: 3 } });
      const [a, b] = await nextEvents(stream, 2);
      expect([a!.fullDocument, b!.fullDocument]).toEqual([
        { _id: 1, v: 2 },
        { _id: 1, v: 3 },
      ]);
      await stream.close();
    });

    it("whenAvailable with images disabled: fullDocument is null", async () => {
      const [update] = await threeChanges(await collection(false), { fullDocument: "whenAvailable" });
      expect(update).toHaveProperty("fullDocument", null);
    });

    it("required with images enabled: the post-image", async () => {
      const [update] = await threeChanges(await collection(true), { fullDocument: "required" });
      expect(update!.fullDocument).toEqual({ _id: 1, v: 2 });
    });

    it("required with images disabled: the update event fails with 47 NoMatchingDocument", async () => {
      const c = await collection(false);
      const stream = await openStream(c, [], { fullDocument: "required" });
      await c.updateOne({ _id: 1 }, { $set: { v: 2 } });
      await expectCode(stream.next(), 47);
      await stream.close();
    });
  });

  describe("fullDocumentBeforeChange", () => {
    it("off (default): no fullDocumentBeforeChange field", async () => {
      const events = await threeChanges(await collection(true), {});
      for (const e of events) expect("fullDocumentBeforeChange" in e).toBe(false);
    });

    it("whenAvailable with images enabled: the pre-image of update, replace and delete", async () => {
      const events = await threeChanges(await collection(true), { fullDocumentBeforeChange: "whenAvailable" });
      expect(events.map((e) => e.fullDocumentBeforeChange)).toEqual([
        { _id: 1, v: 1 },
        { _id: 1, v: 2 },
        { _id: 1, v: 3 },
      ]);
    });

    it("whenAvailable with images disabled: explicitly null", async () => {
      const events = await threeChanges(await collection(false), { fullDocumentBeforeChange: "whenAvailable" });
      for (const e of events) expect(e).toHaveProperty("fullDocumentBeforeChange", null);
    });

    it("required with images enabled: the pre-images", async () => {
      const events = await threeChanges(await collection(true), { fullDocumentBeforeChange: "required" });
      expect(events.map((e) => e.fullDocumentBeforeChange?.v)).toEqual([1, 2, 3]);
    });

    it("required with images disabled: fails with 47 NoMatchingDocument", async () => {
      const c = await collection(false);
      const stream = await openStream(c, [], { fullDocumentBeforeChange: "required" });
      await c.deleteOne({ _id: 1 });
      await expectCode(stream.next(), 47);
      await stream.close();
    });

    it("inserts never carry a pre-image", async () => {
      const c = await collection(true);
      const stream = await openStream(c, [], { fullDocumentBeforeChange: "whenAvailable" });
      await c.insertOne({ _id: 2 });
      const [e] = await nextEvents(stream, 1);
      expect("fullDocumentBeforeChange" in e!).toBe(false);
      await stream.close();
    });

    it("both images together on one update", async () => {
      const c = await collection(true);
      const stream = await openStream(c, [], { fullDocument: "required", fullDocumentBeforeChange: "required" });
      await c.updateOne({ _id: 1 }, { $inc: { v: 10 } });
      const [e] = await nextEvents(stream, 1);
      expect([e!.fullDocumentBeforeChange, e!.fullDocument]).toEqual([
        { _id: 1, v: 1 },
        { _id: 1, v: 11 },
      ]);
      await stream.close();
    });
  });

  it("collMod enables images for the writes made after it only", async () => {
    const c = await collection(false);
    const stream = await openStream(c, [], { fullDocumentBeforeChange: "whenAvailable", fullDocument: "whenAvailable" });
    await c.updateOne({ _id: 1 }, { $set: { v: 2 } });
    await c.db.command({ collMod: "c", changeStreamPreAndPostImages: { enabled: true } });
    await c.updateOne({ _id: 1 }, { $set: { v: 3 } });
    const [before, after] = await nextEvents(stream, 2);
    expect([before!.fullDocumentBeforeChange, before!.fullDocument]).toEqual([null, null]);
    expect([after!.fullDocumentBeforeChange, after!.fullDocument]).toEqual([
      { _id: 1, v: 2 },
      { _id: 1, v: 3 },
    ]);
    await stream.close();
  });

  it("collMod disabling images stops them for later writes", async () => {
    const c = await collection(true);
    const stream = await openStream(c, [], { fullDocumentBeforeChange: "whenAvailable" });
    await c.db.command({ collMod: "c", changeStreamPreAndPostImages: { enabled: false } });
    await c.deleteOne({ _id: 1 });
    const [e] = await nextEvents(stream, 1);
    expect(e!.fullDocumentBeforeChange).toBeNull();
    await stream.close();
  });
});
