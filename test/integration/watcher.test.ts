/**
 * ChangeWatcher on its own, through the real driver: its one server cursor,
 * its lifecycle, its position, and what it does when the stream cannot simply
 * continue (history lost, invalidate, an error the driver does not resume).
 */
import type { ChangeStreamDocument, Document } from "mongodb";
import { MongoClient } from "mongodb";
import pino from "pino";
import { describe, expect, inject, it } from "vitest";
import { squashError, type RestartReason } from "../../src/errors";
import type { ResumeToken } from "../../src/token";
import { ChangeWatcher, type ChangeWatcherOptions } from "../../src/watch/change-watcher";
import { startTestBackend, uniqueDb, useBackend } from "../support/backend";
import { eventually } from "../support/eventually";
import { changeStreamCursors, withAppName } from "../support/server-view";

// Simulator-only knobs used below: a tiny oplog (a real mongod's is ≥ 990 MB, far too big to overflow in a test).
const onSimulator = inject("backend").kind === "sim";

/** Changes of the "items" collection, plus the lifecycle events a database-level stream must always pass. */
const PIPELINE: Document[] = [{ $match: { $or: [{ "ns.coll": "items" }, { operationType: { $in: ["invalidate", "dropDatabase"] } }] } }];

const h = useBackend();

/** A watcher plus everything it reported. */
function observed(client: MongoClient, dbName: string, options: Partial<ChangeWatcherOptions> = {}) {
  const changes: ChangeStreamDocument[] = [];
  const restarts: Array<{ reason: RestartReason; position: ResumeToken | undefined }> = [];
  const logs: Array<{ level: number; msg: string; err?: { code?: number } }> = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const watcher = new ChangeWatcher({
    db: client.db(dbName),
    pipeline: PIPELINE,
    logger,
    onChange: (change) => void changes.push(change),
    onRestart: (reason, position) => void restarts.push({ reason, position }),
    maxAwaitTimeMS: 50,
    backoff: { initialMs: 20, maxMs: 100 },
    ...options,
  });
  const inserted = () => changes.filter((c) => c.operationType === "insert").map((c) => (c as { fullDocument?: { n?: unknown } }).fullDocument?.n);
  return { watcher, changes, restarts, logs, inserted };
}

describe("ChangeWatcher", () => {
  it("holds exactly one server cursor while running; close() releases it and is idempotent", async () => {
    const dbName = uniqueDb("w");
    const { watcher } = observed(h.client, dbName);
    expect(await changeStreamCursors(h.client, dbName)).toBe(0);
    await watcher.start();
    expect(watcher.state).toBe("running");
    expect(await changeStreamCursors(h.client, dbName)).toBe(1);

    await watcher.close();
    expect(watcher.state).toBe("closed");
    expect(await changeStreamCursors(h.client, dbName)).toBe(0);
    await watcher.close();
    expect(await changeStreamCursors(h.client, dbName)).toBe(0);
  });

  it("start() a second time throws, whether the first has finished or is still opening", async () => {
    const dbName = uniqueDb("w");
    const { watcher } = observed(h.client, dbName);
    await watcher.start();
    await expect(watcher.start()).rejects.toThrow(/start\(\) called in state running/);
    await watcher.close();
    await expect(watcher.start()).rejects.toThrow(/start\(\) called in state closed/);

    const other = observed(h.client, dbName).watcher;
    const first = other.start();
    await expect(other.start()).rejects.toThrow(/start\(\) called in state/);
    await first;
    expect(await changeStreamCursors(h.client, dbName)).toBe(1);
    await other.close();
    expect(await changeStreamCursors(h.client, dbName)).toBe(0);
  });

  it("close() while the opening aggregate is in flight: start() rejects and the server cursor is released", async () => {
    const appName = `watcher-open-${uniqueDb()}`;
    const client = new MongoClient(withAppName(h.backend.url, appName), { monitorCommands: true });
    await client.db("admin").command({ ping: 1 });
    const dbName = uniqueDb("w");
    const { watcher } = observed(client, dbName);
    // The server holds the aggregate a while: close() meets an aggregate that is really in flight at the server.
    await client.db("admin").command({
      configureFailPoint: "failCommand",
      mode: { times: 1 },
      data: { failCommands: ["aggregate"], blockConnection: true, blockTimeMS: 300, appName },
    });
    try {
      // close() from the moment the driver sends the aggregate: its reply cannot be in before, however slow the machine.
      let closing: Promise<void> | undefined;
      client.on("commandStarted", (e) => {
        if (e.commandName === "aggregate" && e.databaseName === dbName) closing ??= watcher.close();
      });
      const starting = watcher.start();
      await expect(starting).rejects.toThrow(/closed while starting/);
      expect(closing).toBeDefined();
      await closing;
      expect(watcher.state).toBe("closed");
      expect(await changeStreamCursors(h.client, dbName)).toBe(0);
    } finally {
      await client.close();
    }
  });

  it("advances its position on an idle database while the rest of the cluster writes (postBatchResumeToken)", async () => {
    const dbName = uniqueDb("w");
    const { watcher, changes } = observed(h.client, dbName);
    await watcher.start();
    try {
      const start = watcher.position?._data;
      expect(start).toBeDefined();
      const elsewhere = h.client.db(uniqueDb("other")).collection("items");
      for (let n = 0; n < 5; n++) await elsewhere.insertOne({ n });
      // Within a few awaits of 50 ms on the simulator; a real mongod also writes a no-op every 10 s.
      await eventually("the position to move", () => expect(watcher.position!._data > start!).toBe(true), 15_000);
      expect(changes).toEqual([]);
    } finally {
      await watcher.close();
    }
  });

  it.runIf(onSimulator)("reopens from an idle position that is still in a tiny oplog after many foreign writes (no history lost)", async () => {
    // Simulator only: needs an oplog small enough that the foreign writes push the watcher's start point out of it.
    const small = await startTestBackend({ oplogSize: 10 });
    const appName = `watcher-idle-${uniqueDb()}`;
    const client = new MongoClient(withAppName(small.url, appName));
    const dbName = uniqueDb("w");
    const { watcher, restarts, logs, inserted } = observed(client, dbName);
    try {
      await watcher.start();
      const start = watcher.position!._data;
      const elsewhere = client.db(uniqueDb("other")).collection("items");
      for (let n = 0; n < 30; n++) await elsewhere.insertOne({ n });
      await eventually("the position to move", () => expect(watcher.position!._data > start).toBe(true));
      // Now make the watcher reopen from its own position.
      await client.db("admin").command({ configureFailPoint: "failCommand", mode: { times: 1 }, data: { failCommands: ["getMore"], errorCode: 2, appName } });
      await eventually("the injected failure", () => logs.some((l) => l.msg.startsWith("change stream failed")));
      await client.db(dbName).collection("items").insertOne({ n: "after" });
      await eventually("the change after the reopen", () => inserted().includes("after"));
      expect(restarts).toEqual([]);
      expect(watcher.restarts).toBe(0);
      expect(inserted()).toEqual(["after"]);
    } finally {
      await watcher.close();
      await client.close();
      await small.stop();
    }
  });

  it.runIf(onSimulator)("started after a token that fell off the oplog: restarts from now with onRestart('history-lost') and keeps delivering", async () => {
    // Simulator only: a tiny oplog makes the token fall off after a few writes.
    const small = await startTestBackend({ oplogSize: 5 });
    const client = new MongoClient(small.url);
    const dbName = uniqueDb("w");
    const items = client.db(dbName).collection("items");
    let watcher: ChangeWatcher | undefined;
    try {
      const probe = client.db(dbName).watch();
      await probe.tryNext(); // opens the stream before the write
      await items.insertOne({ n: 0 });
      const old = (await probe.next())._id as ResumeToken;
      await probe.close();
      for (let n = 1; n <= 20; n++) await items.insertOne({ n });

      const o = observed(client, dbName, { startAfter: old });
      watcher = o.watcher;
      await watcher.start();
      expect(o.restarts.map((r) => r.reason)).toEqual(["history-lost"]);
      expect(o.restarts[0]!.position).toBeDefined();
      expect(watcher.state).toBe("running");
      expect(watcher.restarts).toBe(1);

      await items.insertOne({ n: 100 });
      await eventually("a change after the restart", () => o.inserted().includes(100));
      // Restarted from now: nothing from before the restart, the new change exactly once.
      expect(o.inserted()).toEqual([100]);
      expect(await changeStreamCursors(client, dbName)).toBe(1);
    } finally {
      await watcher?.close();
      await client.close();
      await small.stop();
    }
  });

  it("after dropDatabase (invalidate): onRestart('stream-invalidated'), and new changes still arrive", async () => {
    const dbName = uniqueDb("w");
    const db = h.client.db(dbName);
    const { watcher, restarts, changes, inserted } = observed(h.client, dbName);
    await watcher.start();
    try {
      await db.collection("items").insertOne({ n: 1 });
      await eventually("the first change", () => inserted().includes(1));
      await db.dropDatabase();
      await eventually("the restart", () => restarts.length > 0);
      expect(restarts.map((r) => r.reason)).toEqual(["stream-invalidated"]);
      expect(changes.map((c) => c.operationType)).toContain("invalidate");

      await db.collection("items").insertOne({ n: 2 });
      await eventually("a change after the invalidate", () => inserted().includes(2));
      expect(inserted()).toEqual([1, 2]);
      expect(watcher.state).toBe("running");
      expect(await changeStreamCursors(h.client, dbName)).toBe(1);
    } finally {
      await watcher.close();
    }
    expect(await changeStreamCursors(h.client, dbName)).toBe(0);
  });

  it("after a getMore error the driver does not resume: backs off, reopens from its position, loses and repeats nothing", async () => {
    const appName = `watcher-fail-${uniqueDb()}`;
    const client = new MongoClient(withAppName(h.backend.url, appName));
    const dbName = uniqueDb("w");
    const items = client.db(dbName).collection("items");
    const { watcher, restarts, logs, inserted } = observed(client, dbName);
    try {
      await watcher.start();
      for (const n of ["a1", "a2"]) await items.insertOne({ n });
      await eventually("the first changes", () => inserted().length === 2);
      // errorCode 2 (BadValue) without labels: not a ResumableChangeStreamError, so the driver hands it to the watcher.
      await client.db("admin").command({ configureFailPoint: "failCommand", mode: { times: 1 }, data: { failCommands: ["getMore"], errorCode: 2, appName } });
      for (const n of ["a3", "a4", "a5"]) await items.insertOne({ n });
      await eventually("the injected failure", () => logs.some((l) => l.msg.startsWith("change stream failed")));
      for (const n of ["b1", "b2", "b3"]) await items.insertOne({ n });
      // A sentinel, not a pause: changes arrive in order, so a lost or repeated one shows before it.
      await items.insertOne({ n: "end" });
      await eventually("the sentinel", () => inserted().includes("end"));

      expect(inserted()).toEqual(["a1", "a2", "a3", "a4", "a5", "b1", "b2", "b3", "end"]);
      const failures = logs.filter((l) => l.msg.startsWith("change stream failed"));
      expect(failures).toHaveLength(1);
      expect(failures[0]!.err?.code).toBe(2);
      expect(restarts).toEqual([]);
      expect(watcher.state).toBe("running");
      expect(await changeStreamCursors(client, dbName)).toBe(1);
    } finally {
      // Only if it never fired: on a shared mongod another file may have a fail point of its own set.
      if (!logs.some((l) => l.msg.startsWith("change stream failed")))
        await client.db("admin").command({ configureFailPoint: "failCommand", mode: "off" }).catch(squashError);
      await watcher.close();
      await client.close();
    }
  });
});
