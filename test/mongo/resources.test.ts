/**
 * Nothing leaks: closed clients leave no server connections, and closed,
 * exhausted or invalidated cursors leave no server cursors. Checked with
 * $currentOp (idleConnections / idleCursors), filtered to this file's appName or
 * namespaces, so it means the same on a shared mongod.
 */
import { describe, expect, it } from "vitest";
import { MongoClient, type Document } from "mongodb";
import { startTestBackend } from "../support/backend";
import { eventually } from "../support/eventually";
import {
  coll,
  failPoint,
  failPointOff,
  getMoreWaiting,
  insertThroughFaults,
  isSim,
  nextEvents,
  openStream,
  startReading,
  uniqueDb,
  useBackend,
} from "./helpers";

describe("server resources", () => {
  const h = useBackend();

  async function currentOp(options: Document, match: Document): Promise<Document[]> {
    return h.client
      .db("admin")
      .aggregate([{ $currentOp: { allUsers: true, ...options } }, { $match: match }])
      .toArray();
  }
  const idleCursors = (ns: string) => currentOp({ idleCursors: true }, { type: "idleCursor", ns });
  const connectionsOf = (appName: string) => currentOp({ idleConnections: true }, { appName });

  it("a closed client leaves no connections on the server", async () => {
    const appName = `${h.appName}-short-lived`;
    const client: MongoClient = await h.newClient({ appName });
    await coll(client.db(uniqueDb()), "c").insertOne({});
    expect((await connectionsOf(appName)).length).toBeGreaterThan(0);
    await client.close();
    await eventually("its connections gone", async () => expect(await connectionsOf(appName)).toEqual([]));
  });

  it.runIf(isSim)("after client.close() and sim.close() the simulator has no connections (sim.connections)", async () => {
    // A simulator of its own, so that closing it does not affect the other tests.
    const backend = await startTestBackend();
    const sim = backend.sim!;
    const client = new MongoClient(sim.url, { serverSelectionTimeoutMS: 2_000 });
    await client.connect();
    await coll(client.db(uniqueDb()), "c").insertOne({});
    const stream = await openStream(coll(client.db(uniqueDb()), "c"));
    expect(sim.connections).toBeGreaterThan(0);
    await stream.close();
    await client.close();
    await eventually("every connection gone", () => expect(sim.connections).toBe(0));
    await backend.stop();
    expect(sim.connections).toBe(0);
  });

  it("changeStream.close() kills the server cursor", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    const stream = await openStream(c);
    const ns = `${c.dbName}.c`;
    expect(await idleCursors(ns)).toHaveLength(1);
    await stream.close();
    expect(await idleCursors(ns)).toEqual([]);
  });

  it("closing a stream while its getMore waits frees the server cursor without waiting out maxAwaitTimeMS", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    const stream = c.watch([], { maxAwaitTimeMS: 20_000 });
    const { first } = await startReading(stream);
    const pending = first.then(
      () => "event",
      () => "rejected",
    );
    const started = Date.now();
    await stream.close();
    expect(await pending).toBe("rejected");
    expect(Date.now() - started).toBeLessThan(10_000);
    await eventually("its cursor gone", async () => expect(await idleCursors(`${c.dbName}.c`)).toEqual([]));
  });

  it("cursor.close() on a partly read find kills the server cursor; an exhausted one leaves none", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertMany(Array.from({ length: 10 }, (_, i) => ({ _id: i })));
    const ns = `${c.dbName}.c`;
    const cursor = c.find().batchSize(2);
    await cursor.next();
    expect(await idleCursors(ns)).toHaveLength(1);
    await cursor.close();
    expect(await idleCursors(ns)).toEqual([]);
    expect(await c.find().batchSize(3).toArray()).toHaveLength(10);
    expect(await idleCursors(ns)).toEqual([]);
  });

  it("the killCursors command reports what it killed and what it did not find", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertMany(Array.from({ length: 5 }, (_, i) => ({ _id: i })));
    const reply = await c.db.command({ find: "c", batchSize: 1 });
    const id = reply.cursor.id;
    const killed = await c.db.command({ killCursors: "c", cursors: [id] });
    expect(killed.cursorsKilled.map(String)).toEqual([String(id)]);
    const again = await c.db.command({ killCursors: "c", cursors: [id] });
    expect(again.cursorsNotFound.map(String)).toEqual([String(id)]);
    const err = await c.db.command({ getMore: id, collection: "c" }).catch((e) => e);
    expect(err.code).toBe(43);
  });

  it("an invalidated stream leaves no server cursor", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({});
    const stream = await openStream(c);
    await c.drop();
    await nextEvents(stream, 2);
    expect(await idleCursors(`${c.dbName}.c`)).toEqual([]);
    await stream.close();
  });

  it("a stream resumed after a getMore fault leaves exactly one server cursor", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    const stream = await openStream(c);
    try {
      await failPoint(h.client, "failGetMoreAfterCursorCheckout", { times: 1 }, { errorCode: 91 }, h.appName);
      await c.insertOne({ _id: 1 });
      await nextEvents(stream, 1);
      expect(await stream.tryNext()).toBeNull();
      expect(await idleCursors(`${c.dbName}.c`)).toHaveLength(1);
    } finally {
      await failPointOff(h.client, "failGetMoreAfterCursorCheckout");
      await stream.close();
    }
  });

  it.runIf(isSim)("a cursor whose connection is cut mid-getMore is removed (simulator dropConnections)", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    const stream = c.watch([], { maxAwaitTimeMS: 5_000 });
    const { first: pending } = await startReading(stream);
    // Cut once the getMore is at the server, not after a guessed pause.
    await getMoreWaiting(h.client, `${c.dbName}.c`);
    h.backend.sim!.dropConnections();
    await insertThroughFaults(c, [{ _id: 1 }]);
    await pending;
    // The stream is idle now (no getMore in flight): only its resumed cursor remains.
    expect(await idleCursors(`${c.dbName}.c`)).toHaveLength(1);
    await stream.close();
    expect(await idleCursors(`${c.dbName}.c`)).toEqual([]);
  });
});
