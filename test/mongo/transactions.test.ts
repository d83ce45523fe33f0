/**
 * Multi-document transactions through the driver's session API (docs: core/transactions,
 * reference/change-events "lsid"/"txnNumber"): isolation, conflicts, the answers for
 * ended or unknown transactions, and what a committed (or aborted) transaction looks like
 * to change streams and snapshot reads.
 */
import { describe, expect, it } from "vitest";
import { Long, MongoServerError, type ClientSession, type Document, type Timestamp } from "mongodb";
import { coll, expectCode, nextEvents, openStream, uniqueDb, useBackend } from "./helpers";

describe("transactions", () => {
  const h = useBackend();

  /** A fresh database with collections a and b, created up front (no catalog change inside the transactions). */
  async function fresh(options: Document = {}) {
    const db = h.client.db(uniqueDb());
    await db.createCollection("a", options);
    await db.createCollection("b", options);
    return { db, a: coll(db, "a"), b: coll(db, "b") };
  }

  async function inSession<T>(run: (s: ClientSession) => Promise<T>): Promise<T> {
    const session = h.client.startSession();
    try {
      return await run(session);
    } finally {
      await session.endSession();
    }
  }

  describe("isolation", () => {
    it("withTransaction commits all writes at once; inside, the transaction reads its own writes", async () => {
      const { a, b } = await fresh();
      await a.insertOne({ _id: 1, v: 0 });
      await inSession((session) =>
        session.withTransaction(async () => {
          await a.updateOne({ _id: 1 }, { $set: { v: 1 } }, { session });
          await b.insertOne({ _id: 1 }, { session });
          expect(await a.findOne({ _id: 1 }, { session })).toEqual({ _id: 1, v: 1 });
          expect(await b.countDocuments({}, { session })).toBe(1);
          // Outside the transaction nothing has happened yet.
          expect(await a.findOne({ _id: 1 })).toEqual({ _id: 1, v: 0 });
          expect(await b.countDocuments({})).toBe(0);
        }),
      );
      expect(await a.findOne({ _id: 1 })).toEqual({ _id: 1, v: 1 });
      expect(await b.find().toArray()).toEqual([{ _id: 1 }]);
    });

    it("a transaction reads the snapshot of its first statement: later commits by others stay invisible", async () => {
      const { a } = await fresh();
      await a.insertMany([{ _id: 1 }, { _id: 2 }]);
      await inSession(async (session) => {
        session.startTransaction();
        expect(await a.countDocuments({}, { session })).toBe(2);
        await a.insertOne({ _id: 3 });
        await a.deleteOne({ _id: 1 });
        expect((await a.find({}, { session }).sort({ _id: 1 }).toArray()).map((d) => d._id)).toEqual([1, 2]);
        await session.commitTransaction();
      });
      expect((await a.find().sort({ _id: 1 }).toArray()).map((d) => d._id)).toEqual([2, 3]);
    });

    it("abortTransaction discards every write", async () => {
      const { a, b } = await fresh();
      await inSession(async (session) => {
        session.startTransaction();
        await a.insertOne({ _id: 1 }, { session });
        await b.insertOne({ _id: 1 }, { session });
        await session.abortTransaction();
      });
      expect(await a.countDocuments({})).toBe(0);
      expect(await b.countDocuments({})).toBe(0);
    });

    it("a failed statement aborts the transaction: the next one gets NoSuchTransaction (TransientTransactionError)", async () => {
      const { a } = await fresh();
      await a.insertOne({ _id: 1 });
      await inSession(async (session) => {
        session.startTransaction();
        await a.insertOne({ _id: 2 }, { session });
        await expectCode(a.insertOne({ _id: 1 }, { session }), 11000);
        const err = await expectCode(a.insertOne({ _id: 3 }, { session }), 251);
        expect(err.hasErrorLabel("TransientTransactionError")).toBe(true);
        await session.abortTransaction();
      });
      expect((await a.find().toArray()).map((d) => d._id)).toEqual([1]);
    });
  });

  describe("write conflicts", () => {
    it("a second transaction writing the same document gets WriteConflict (112, TransientTransactionError); the first commits", async () => {
      const { a } = await fresh();
      await a.insertOne({ _id: 1, v: 0 });
      const s1 = h.client.startSession();
      const s2 = h.client.startSession();
      try {
        s1.startTransaction();
        s2.startTransaction();
        await a.updateOne({ _id: 1 }, { $set: { v: 1 } }, { session: s1 });
        const err = await expectCode(a.updateOne({ _id: 1 }, { $set: { v: 2 } }, { session: s2 }), 112);
        expect(err.codeName).toBe("WriteConflict");
        expect(err.hasErrorLabel("TransientTransactionError")).toBe(true);
        await s1.commitTransaction();
        // The conflict aborted s2's transaction on the server.
        const commit = await expectCode(s2.commitTransaction(), 251);
        expect(commit.hasErrorLabel("TransientTransactionError")).toBe(true);
      } finally {
        await s1.endSession();
        await s2.endSession();
      }
      expect(await a.findOne({ _id: 1 })).toEqual({ _id: 1, v: 1 });
    });

    it("writing a document that someone committed after the transaction's snapshot is a WriteConflict", async () => {
      const { a } = await fresh();
      await a.insertMany([{ _id: 1, v: 0 }, { _id: 2 }]);
      await inSession(async (session) => {
        session.startTransaction();
        await a.findOne({ _id: 2 }, { session }); // the snapshot is taken here
        await a.updateOne({ _id: 1 }, { $set: { v: "outside" } });
        await expectCode(a.updateOne({ _id: 1 }, { $set: { v: "inside" } }, { session }), 112);
        await session.abortTransaction();
      });
      expect(await a.findOne({ _id: 1 })).toEqual({ _id: 1, v: "outside" });
    });

    it("a write outside any transaction to a document a transaction holds waits for it and then applies on top (no lost update)", async () => {
      const { a } = await fresh();
      await a.insertOne({ _id: 1, n: 0 });
      await inSession(async (session) => {
        session.startTransaction();
        await a.updateOne({ _id: 1 }, { $set: { n: 10 } }, { session });
        const outside = a.updateOne({ _id: 1 }, { $inc: { n: 1 } });
        let settled = false;
        void outside.finally(() => (settled = true));
        // A full round trip to the server while the outside write is held.
        expect(await a.findOne({ _id: 1 })).toEqual({ _id: 1, n: 0 });
        expect(settled).toBe(false);
        await session.commitTransaction();
        expect((await outside).modifiedCount).toBe(1);
      });
      expect(await a.findOne({ _id: 1 })).toEqual({ _id: 1, n: 11 });
    });

    it("withTransaction retries a transaction that hit a TransientTransactionError, and it then commits once", async () => {
      const { a } = await fresh();
      await a.insertOne({ _id: 1, n: 0 });
      const blocker = h.client.startSession();
      let attempts = 0;
      try {
        blocker.startTransaction();
        await a.updateOne({ _id: 1 }, { $inc: { n: 100 } }, { session: blocker });
        await inSession((session) =>
          session.withTransaction(async () => {
            attempts++;
            // The first attempt conflicts with the open blocker; ending the blocker lets the retry through.
            if (attempts === 2) expect(await a.findOne({ _id: 1 })).toEqual({ _id: 1, n: 0 });
            try {
              await a.updateOne({ _id: 1 }, { $inc: { n: 1 } }, { session });
            } catch (err) {
              if (attempts === 1) await blocker.abortTransaction();
              throw err;
            }
          }),
        );
      } finally {
        await blocker.endSession();
      }
      expect(attempts).toBe(2);
      expect(await a.findOne({ _id: 1 })).toEqual({ _id: 1, n: 1 });
    });
  });

  describe("ended and unknown transactions", () => {
    it("commit is idempotent: committing again answers ok and changes nothing", async () => {
      const { a } = await fresh();
      await inSession(async (session) => {
        session.startTransaction();
        await a.insertOne({ _id: 1 }, { session });
        await session.commitTransaction();
        await session.commitTransaction();
      });
      expect(await a.countDocuments({})).toBe(1);
    });

    it("answers NoSuchTransaction for a transaction number never started, TransactionCommitted for a committed one, TransactionTooOld for an older number", async () => {
      const { a } = await fresh();
      const client = await h.newClient({ monitorCommands: true });
      const numbers: Long[] = [];
      client.on("commandStarted", (e) => e.command.txnNumber && numbers.push(e.command.txnNumber));
      const db = client.db(a.dbName);
      // No causal consistency: the driver would add afterClusterTime to the hand-made statements.
      const session = client.startSession({ causalConsistency: false });
      try {
        // Statements of a transaction sent by hand (the driver fills in only the lsid for them).
        const statement = (txnNumber: Long, extra: Document = {}) =>
          db.command({ insert: "a", documents: [{ _id: Number(txnNumber) }], txnNumber, autocommit: false, ...extra }, { session });
        const unknown = await expectCode(statement(Long.fromNumber(77)), 251);
        expect(unknown.hasErrorLabel("TransientTransactionError")).toBe(true);
        session.startTransaction();
        await coll(client.db(a.dbName), "a").insertOne({ _id: "committed" }, { session });
        await session.commitTransaction();
        const committed = numbers[numbers.length - 1];
        await expectCode(statement(committed!), 256);
        await expectCode(statement(committed!.subtract(1), { startTransaction: true }), 225);
      } finally {
        await session.endSession();
      }
      expect((await a.find().toArray()).map((d) => d._id)).toEqual(["committed"]);
    });

    it("count is not allowed in a transaction (OperationNotSupportedInTransaction, 263); countDocuments is", async () => {
      const { a } = await fresh();
      await a.insertOne({ _id: 1 });
      await inSession(async (session) => {
        session.startTransaction();
        expect(await a.countDocuments({}, { session })).toBe(1);
        await session.abortTransaction();
        session.startTransaction();
        await expectCode(a.count({}, { session }), 263);
        await session.abortTransaction();
      });
    });

    it("maxCommitTimeMS reaches the commit as maxTimeMS, and readConcern/writeConcern of the transaction go where the spec puts them", async () => {
      const { a } = await fresh();
      const started: Document[] = [];
      const client = await h.newClient({ monitorCommands: true });
      client.on("commandStarted", (e) => started.push(e.command));
      const session = client.startSession();
      try {
        session.startTransaction({ readConcern: { level: "snapshot" }, writeConcern: { w: "majority" }, maxCommitTimeMS: 5000 });
        await coll(client.db(a.dbName), "a").insertOne({ _id: 1 }, { session });
        await coll(client.db(a.dbName), "a").insertOne({ _id: 2 }, { session });
        await session.commitTransaction();
      } finally {
        await session.endSession();
      }
      const [first, second, commit] = started.filter((c) => c.insert || c.commitTransaction);
      expect(first!.readConcern).toMatchObject({ level: "snapshot" });
      expect(second!.readConcern).toBeUndefined();
      expect(commit!.maxTimeMS).toBe(5000);
      expect(commit!.writeConcern).toMatchObject({ w: "majority" });
      expect(await a.countDocuments({})).toBe(2);
    });
  });

  describe("change streams", () => {
    /** Commits insert a1, update a1, insert b1, delete a0 in one transaction; returns the session's lsid id. */
    async function commitFour(a: ReturnType<typeof coll>, b: ReturnType<typeof coll>): Promise<Document> {
      return inSession(async (session) => {
        await session.withTransaction(async () => {
          await a.insertOne({ _id: "a1", v: 1 }, { session });
          await a.updateOne({ _id: "a1" }, { $set: { v: 2 } }, { session });
          await b.insertOne({ _id: "b1" }, { session });
          await a.deleteOne({ _id: "a0" }, { session });
        });
        return session.id!;
      });
    }

    it("a committed transaction is one event per write, in order, with one clusterTime, its lsid and txnNumber", async () => {
      const { db, a, b } = await fresh();
      await a.insertOne({ _id: "a0" });
      const stream = await openStream(db);
      const lsid = await commitFour(a, b);
      const events = await nextEvents(stream, 4);
      await stream.close();
      expect(events.map((e) => [e.operationType, e.ns.coll, e.documentKey._id])).toEqual([
        ["insert", "a", "a1"],
        ["update", "a", "a1"],
        ["insert", "b", "b1"],
        ["delete", "a", "a0"],
      ]);
      // The insert shows the document as inserted, not as the transaction left it.
      expect(events[0]!.fullDocument).toEqual({ _id: "a1", v: 1 });
      expect(events[1]!.updateDescription.updatedFields).toEqual({ v: 2 });
      const times = new Set(events.map((e) => `${(e.clusterTime as Timestamp).toString()}`));
      expect(times.size).toBe(1);
      for (const e of events) {
        expect(e.lsid.id.toString("hex")).toBe(lsid.id.toString("hex"));
        // An int64 on the wire; the driver hands it out as a number.
        expect(typeof e.txnNumber).toBe("number");
        expect(e.txnNumber).toBe(events[0]!.txnNumber);
      }
      expect(new Set(events.map((e) => e._id._data)).size).toBe(4);
    });

    it("a collection stream sees only its collection's writes of the transaction; a write outside a transaction has no lsid", async () => {
      const { a, b } = await fresh();
      await a.insertOne({ _id: "a0" });
      const stream = await openStream(b);
      await commitFour(a, b);
      await b.insertOne({ _id: "b2" });
      const events = await nextEvents(stream, 2);
      await stream.close();
      expect(events.map((e) => e.documentKey._id)).toEqual(["b1", "b2"]);
      expect(events[0]!.lsid).toBeDefined();
      expect(events[1]!.lsid).toBeUndefined();
      expect(events[1]!.txnNumber).toBeUndefined();
    });

    it("an aborted transaction leaves nothing: the next event is the write after it", async () => {
      const { db, a, b } = await fresh();
      const stream = await openStream(db);
      await inSession(async (session) => {
        session.startTransaction();
        await a.insertOne({ _id: "gone" }, { session });
        await b.insertOne({ _id: "gone" }, { session });
        await session.abortTransaction();
      });
      await a.insertOne({ _id: "sentinel" });
      const [next] = await nextEvents(stream, 1);
      await stream.close();
      expect(next!.documentKey._id).toBe("sentinel");
    });

    it("resumeAfter and startAfter any event of a transaction yield exactly the rest of it, then what follows", async () => {
      const { db, a, b } = await fresh();
      await a.insertOne({ _id: "a0" });
      const stream = await openStream(db);
      await commitFour(a, b);
      await a.insertOne({ _id: "after" });
      const all = await nextEvents(stream, 5);
      await stream.close();
      const ids = all.map((e) => `${e.ns.coll}:${e.documentKey._id}:${e.operationType}`);
      for (let i = 0; i < 4; i++) {
        for (const option of ["resumeAfter", "startAfter"] as const) {
          const resumed = db.watch([], { [option]: all[i]!._id, maxAwaitTimeMS: 100 });
          const rest = await nextEvents(resumed as never, 4 - i);
          await resumed.close();
          expect(
            rest.map((e) => `${e.ns.coll}:${e.documentKey._id}:${e.operationType}`),
            `${option} event ${i}`,
          ).toEqual(ids.slice(i + 1));
        }
      }
    });

    it("pre- and post-images work for writes inside a transaction", async () => {
      const { a } = await fresh({ changeStreamPreAndPostImages: { enabled: true } });
      await a.insertOne({ _id: 1, v: 0 });
      const stream = await openStream(a, [], { fullDocument: "required", fullDocumentBeforeChange: "required" });
      await inSession((session) =>
        session.withTransaction(async () => {
          await a.updateOne({ _id: 1 }, { $set: { v: 1 } }, { session });
          await a.replaceOne({ _id: 1 }, { v: 2 }, { session });
          await a.deleteOne({ _id: 1 }, { session });
        }),
      );
      const [update, replace, del] = await nextEvents(stream, 3);
      await stream.close();
      expect([update!.fullDocumentBeforeChange, update!.fullDocument]).toEqual([
        { _id: 1, v: 0 },
        { _id: 1, v: 1 },
      ]);
      expect([replace!.fullDocumentBeforeChange, replace!.fullDocument]).toEqual([
        { _id: 1, v: 1 },
        { _id: 1, v: 2 },
      ]);
      expect(del!.fullDocumentBeforeChange).toEqual({ _id: 1, v: 2 });
    });
  });

  describe("snapshot reads", () => {
    it("a snapshot read at a cluster time sees a committed transaction entirely or not at all", async () => {
      const { db, a } = await fresh();
      const before = await db.command({ insert: "a", documents: [{ _id: 0 }] });
      const stream = await openStream(a);
      await inSession((session) =>
        session.withTransaction(async () => {
          await a.insertMany([{ _id: 1 }, { _id: 2 }, { _id: 3 }], { session });
        }),
      );
      const [first] = await nextEvents(stream, 3);
      await stream.close();
      const at = async (ts: Timestamp) => {
        const reply = await db.command({ find: "a", sort: { _id: 1 }, readConcern: { level: "snapshot", atClusterTime: ts } });
        return (reply.cursor.firstBatch as Document[]).map((d) => d._id);
      };
      expect(await at(before.operationTime as Timestamp)).toEqual([0]);
      expect(await at(first!.clusterTime as Timestamp)).toEqual([0, 1, 2, 3]);
    });
  });
});

describe("retryable writes", () => {
  const h = useBackend();

  it("a write retried with the same lsid and txnNumber is applied once", async () => {
    const client = await h.newClient({ monitorCommands: true, retryWrites: true });
    const c = coll(client.db(uniqueDb()), "c");
    await c.insertOne({ _id: 1, n: 0 });
    const sent: Document[] = [];
    client.on("commandStarted", (e) => {
      if (e.commandName === "update") sent.push(e.command);
    });
    // The write happens, then its write concern "fails" with a retryable error: the driver retries it.
    await client.db("admin").command({
      configureFailPoint: "failCommand",
      mode: { times: 1 },
      data: {
        failCommands: ["update"],
        writeConcernError: { code: 91, errmsg: "Replication is being shut down" },
        errorLabels: ["RetryableWriteError"],
        appName: h.appName,
      },
    });
    try {
      const result = await c.updateOne({ _id: 1 }, { $inc: { n: 1 } });
      expect(result.modifiedCount).toBe(1);
    } finally {
      await client.db("admin").command({ configureFailPoint: "failCommand", mode: "off" });
    }
    expect(sent).toHaveLength(2);
    expect(sent[1]!.txnNumber.toString()).toBe(sent[0]!.txnNumber.toString());
    expect(sent[1]!.lsid.id.toString("hex")).toBe(sent[0]!.lsid.id.toString("hex"));
    expect(await c.findOne({ _id: 1 })).toEqual({ _id: 1, n: 1 });
  });

  it("a newer txnNumber runs again; an older one is refused (TransactionTooOld, 225)", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ _id: 1, n: 0 });
    const session = h.client.startSession();
    try {
      // A retryable write sent by hand: the driver adds only the lsid to a command it runs as given.
      const inc = (n: number) =>
        h.client.db(c.dbName).command({ update: "c", updates: [{ q: { _id: 1 }, u: { $inc: { n: 1 } } }], txnNumber: Long.fromNumber(n) }, { session });
      await inc(5);
      await inc(5); // a retry: answered, not applied
      await inc(6);
      const err = await expectCode(inc(4), 225);
      expect(err).toBeInstanceOf(MongoServerError);
    } finally {
      await session.endSession();
    }
    expect(await c.findOne({ _id: 1 })).toEqual({ _id: 1, n: 2 });
  });
});
