/**
 * How much one getMore of a change stream returns: `batchSize` documents when the command names
 * one; otherwise as much as fits in 16 MiB, not the 101 of a first batch
 * (https://www.mongodb.com/docs/manual/reference/command/getMore/).
 */
import { describe, expect, it } from "vitest";
import type { Document, Long } from "mongodb";
import { coll, uniqueDb, useBackend } from "./helpers";

describe("change stream getMore batch size", () => {
  const h = useBackend();

  async function open(db: ReturnType<typeof h.client.db>, name: string): Promise<Long> {
    const reply = await db.command({ aggregate: name, pipeline: [{ $changeStream: {} }], cursor: { batchSize: 0 } });
    return (reply.cursor as Document).id as Long;
  }
  const getMore = (db: ReturnType<typeof h.client.db>, id: Long, name: string, extra: Document = {}) =>
    db.command({ getMore: id, collection: name, maxTimeMS: 100, ...extra }).then((r) => (r.cursor as Document).nextBatch as Document[]);

  it("without batchSize: every waiting event up to 16 MiB; with batchSize: that many", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    const id = await open(c.db, "c");
    await c.insertMany(Array.from({ length: 250 }, (_, i) => ({ _id: i })));
    const limited = await getMore(c.db, id, "c", { batchSize: 40 });
    expect(limited.map((e) => (e.documentKey as Document)._id)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const rest = await getMore(c.db, id, "c");
    expect(rest).toHaveLength(210);
    expect((rest[0]!.documentKey as Document)._id).toBe(40);
  });

  it("without batchSize: a batch stops before 16 MiB, and the next getMore continues from there", async () => {
    const c = coll(h.client.db(uniqueDb()), "big");
    const id = await open(c.db, "big");
    const payload = "x".repeat(3 * 1024 * 1024);
    for (let i = 0; i < 7; i++) await c.insertOne({ _id: i, payload });
    const first = await getMore(c.db, id, "big");
    const second = await getMore(c.db, id, "big");
    // 3 MiB each: five fit in 16 MiB, the sixth would not.
    expect(first.map((e) => (e.documentKey as Document)._id)).toEqual([0, 1, 2, 3, 4]);
    expect(second.map((e) => (e.documentKey as Document)._id)).toEqual([5, 6]);
  });
});
