/**
 * postBatchResumeToken and awaiting getMores (change-streams spec "Updating the
 * Cached Resume Token"; SERVER-19665 for the awaitData wait).
 */
import { describe, expect, it } from "vitest";
import type { Document } from "mongodb";
import { coll, isSim, nextEvents, openStream, recordCommands, startReading, uniqueDb, useBackend } from "./helpers";

describe("postBatchResumeToken and awaitData", () => {
  const h = useBackend({}, { monitorCommands: true });
  const fresh = () => coll(h.client.db(uniqueDb()), "c");
  const data = (token: unknown) => (token as { _data: string })._data;

  it("every aggregate and getMore reply of a stream carries a postBatchResumeToken", async () => {
    const c = fresh();
    const rec = recordCommands(h.client, "commandSucceeded");
    const stream = await openStream(c);
    await c.insertOne({ _id: 1 });
    await nextEvents(stream, 1);
    await stream.tryNext();
    await stream.close();
    rec.stop();
    const replies = rec.seen.filter((e) => e.commandName === "aggregate" || e.commandName === "getMore").map((e) => e.reply as Document);
    expect(replies.length).toBeGreaterThanOrEqual(3);
    for (const reply of replies) expect(typeof reply.cursor.postBatchResumeToken?._data).toBe("string");
  });

  it("an idle stream's cached token advances with empty batches as the cluster moves on", async () => {
    const c = fresh();
    const elsewhere = coll(c.db, "elsewhere");
    const stream = await openStream(c);
    const seen: string[] = [];
    stream.on("resumeTokenChanged", (token) => seen.push(data(token)));
    const first = data(stream.resumeToken);
    for (let i = 0; i < 3; i++) {
      await elsewhere.insertOne({ i });
      expect(await stream.tryNext()).toBeNull();
    }
    const last = data(stream.resumeToken);
    expect(last > first).toBe(true);
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect([...seen].sort()).toEqual(seen);
    await stream.close();
  });

  it("the token of an empty batch resumes exactly after what the stream had scanned", async () => {
    const c = fresh();
    const stream = await openStream(c, [{ $match: { "fullDocument.keep": true } }]);
    await c.insertOne({ _id: 1, keep: false });
    expect(await stream.tryNext()).toBeNull();
    const pbrt = stream.resumeToken;
    await stream.close();
    await c.insertOne({ _id: 2, keep: true });
    const resumed = c.watch([], { resumeAfter: pbrt, maxAwaitTimeMS: 100 });
    const [e] = await nextEvents(resumed, 1);
    expect(e!.documentKey).toEqual({ _id: 2 });
    await resumed.close();
  });

  it("the cached token after a batch is at or after its last event's token", async () => {
    const c = fresh();
    const rec = recordCommands(h.client, "commandSucceeded");
    const stream = await openStream(c);
    await c.insertMany([{ _id: 1 }, { _id: 2 }, { _id: 3 }]);
    const events = await nextEvents(stream, 3);
    rec.stop();
    const batch = rec.seen
      .filter((e) => e.commandName === "getMore")
      .map((e) => e.reply.cursor as Document)
      .find((cur) => cur.nextBatch.length > 0)!;
    const lastInBatch = data(batch.nextBatch[batch.nextBatch.length - 1]._id);
    expect(data(batch.postBatchResumeToken) >= lastInBatch).toBe(true);
    expect(data(stream.resumeToken) >= data(events[2]!._id)).toBe(true);
    await stream.close();
  });

  it("resume tokens (events and high-water marks) increase along one stream", async () => {
    const c = fresh();
    const stream = await openStream(c);
    const seen: string[] = [data(stream.resumeToken)];
    stream.on("resumeTokenChanged", (token) => seen.push(data(token)));
    for (let i = 0; i < 3; i++) {
      await c.insertOne({ _id: i });
      await nextEvents(stream, 1);
      expect(await stream.tryNext()).toBeNull();
    }
    await stream.close();
    expect(seen.length).toBeGreaterThanOrEqual(6);
    for (let i = 1; i < seen.length; i++) expect(seen[i]! >= seen[i - 1]!).toBe(true);
  });

  it("an idle getMore waits maxAwaitTimeMS: a handful of getMores per second, not a busy loop", async () => {
    const c = fresh();
    const stream = await openStream(c, [], { maxAwaitTimeMS: 200 });
    const rec = recordCommands(h.client);
    const until = Date.now() + 1_000;
    while (Date.now() < until) expect(await stream.tryNext()).toBeNull();
    rec.stop();
    const getMores = rec.names().filter((n) => n === "getMore").length;
    // ~5 expected; a busy loop would make hundreds.
    expect(getMores).toBeGreaterThanOrEqual(2);
    expect(getMores).toBeLessThanOrEqual(15);
    await stream.close();
  });

  it("a waiting getMore returns as soon as an event arrives", async () => {
    const c = fresh();
    const stream = c.watch([], { maxAwaitTimeMS: 20_000 });
    const { first } = await startReading(stream);
    const started = Date.now();
    setTimeout(() => void c.insertOne({ _id: "wake" }), 50);
    const e = await first;
    expect(e.documentKey).toEqual({ _id: "wake" });
    expect(Date.now() - started).toBeLessThan(10_000);
    await stream.close();
  });

  it("without maxAwaitTimeMS the server still awaits (about a second) instead of spinning", async () => {
    const c = fresh();
    const stream = c.watch();
    const rec = recordCommands(h.client);
    const started = Date.now();
    expect(await stream.tryNext()).toBeNull();
    expect(await stream.tryNext()).toBeNull();
    rec.stop();
    expect(rec.names().filter((n) => n === "getMore").length).toBeLessThanOrEqual(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    await stream.close();
  });
});

/**
 * The primary's periodic no-op writes keep an idle stream's token moving with no
 * writes at all. mongod writes one every 10 s; the simulator's `noopIntervalMs`
 * knob shortens that so the test stays quick, hence simulator-only.
 */
describe.runIf(isSim)("idle cluster: periodic no-op writes (simulator noopIntervalMs)", () => {
  const h = useBackend({ noopIntervalMs: 100 });

  it("an idle stream's resume token advances without any write, and no event appears", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    const stream = await openStream(c);
    const first = (stream.resumeToken as { _data: string })._data;
    const before = (await h.client.db("admin").command({ ping: 1 })).operationTime;
    const until = Date.now() + 600;
    while (Date.now() < until) expect(await stream.tryNext()).toBeNull();
    const after = (await h.client.db("admin").command({ ping: 1 })).operationTime;
    expect((stream.resumeToken as { _data: string })._data > first).toBe(true);
    expect(after.greaterThan(before)).toBe(true);
    await stream.close();
  });
});
