/**
 * RESET through HTTP, for the cases where a resume is impossible: the client's
 * cursor is older than the change history, or the watcher's own stream had to
 * restart elsewhere than right after its last change (invalidate, history lost).
 * Every time: RESET first, then live events — never a hang, never a silent gap.
 */
import { MongoClient } from "mongodb";
import { describe, expect, inject, it } from "vitest";
import type { Flowsync } from "../../src/flowsync";
import { startTestBackend, uniqueDb, type TestBackend } from "../support/backend";
import { connected, startTestFlowsync } from "../support/flowsync";
import { eventually } from "../support/eventually";
import { withAppName } from "../support/server-view";
import type { SseClient } from "../support/sse-client";

// Simulator-only knob below: a tiny oplog (a real mongod's is ≥ 990 MB, far too big to overflow in a test).
const onSimulator = inject("backend").kind === "sim";

/** Runs `body` with a backend, a flowsync on it and a writer, and cleans all up. */
async function withFlowsync(
  options: { oplogSize?: number; appName?: string; env?: Record<string, string> },
  body: (ctx: { fs: Flowsync; writer: MongoClient; dbName: string; backend: TestBackend }) => Promise<void>,
): Promise<void> {
  const backend = await startTestBackend(options.oplogSize ? { oplogSize: options.oplogSize } : {});
  const dbName = uniqueDb("reset");
  const url = options.appName ? withAppName(backend.url, options.appName) : backend.url;
  const fs = await startTestFlowsync(url, { MONGO_DB: dbName, ...options.env });
  const writer = new MongoClient(backend.url);
  try {
    await body({ fs, writer, dbName, backend });
  } finally {
    await writer.close();
    await fs.stop();
    await backend.stop();
  }
}

const shape = (c: SseClient) => c.events().map((e) => `${e.type}:${e.type === "RESET" ? e.data.reason : (e.data.doc as { n?: unknown } | null)?.n}`);

describe("RESET", () => {
  it.runIf(onSimulator)("a cursor older than the oplog: RESET (history-lost) first, then live events", async () => {
    // Simulator only: an oplog of 50 entries, so that the client's cursor falls off it.
    await withFlowsync({ oplogSize: 50, env: { REPLAY_BUFFER_SIZE: "1" } }, async ({ fs, writer, dbName }) => {
      const nodes = writer.db(dbName).collection("nodes");
      const first = await connected(fs, "old");
      await nodes.insertOne({ flowId: "old", n: 0 });
      await first.until((x) => x.messages.length === 1, 10_000, "first event");
      await first.close();
      const cursor = first.lastEventId!;
      for (let n = 1; n <= 100; n++) await nodes.insertOne({ flowId: "old", n });

      const resumed = await connected(fs, "old", cursor);
      await resumed.until((x) => x.messages.length === 1, 10_000, "RESET");
      const [reset] = resumed.events();
      expect(reset).toMatchObject({ type: "RESET", data: { flowId: "old", reason: "history-lost" } });
      expect(reset!.id).toEqual(expect.any(String));
      await nodes.insertOne({ flowId: "old", n: "live" });
      await resumed.until((x) => x.messages.length === 2, 10_000, "live event");
      expect(shape(resumed)).toEqual(["RESET:history-lost", "SYNC_CANVAS:live"]);
      expect(fs.subscriptions.counters.resets).toBe(1);
      await resumed.close();
    });
  });

  it("dropDatabase invalidates the watcher's stream: every subscriber gets RESET (stream-invalidated), then live events", async () => {
    await withFlowsync({}, async ({ fs, writer, dbName }) => {
      const db = writer.db(dbName);
      const clients = [await connected(fs, "inv-a"), await connected(fs, "inv-a"), await connected(fs, "inv-b")];
      const flowOf = (i: number) => (i < 2 ? "inv-a" : "inv-b");
      for (const flowId of ["inv-a", "inv-b"]) await db.collection("nodes").insertOne({ flowId, n: "before" });
      for (const c of clients) await c.until((x) => x.messages.length === 1, 10_000, "event before the drop");

      await db.dropDatabase();
      for (const c of clients) await c.until((x) => x.messages.length === 2, 10_000, "RESET");
      expect(fs.watcher.restarts).toBe(1);

      for (const flowId of ["inv-a", "inv-b"]) await db.collection("nodes").insertOne({ flowId, n: "after" });
      for (const c of clients) await c.until((x) => x.messages.length === 3, 10_000, "live event after the RESET");
      clients.forEach((c, i) => {
        expect(shape(c)).toEqual(["SYNC_CANVAS:before", "RESET:stream-invalidated", "SYNC_CANVAS:after"]);
        expect(c.events()[1]!.data.flowId).toBe(flowOf(i));
      });
      expect(fs.watcher.ready).toBe(true);
      await Promise.all(clients.map((c) => c.close()));
    });
  });

  it("changes already waiting when the invalidated stream reopens still come after the RESET", async () => {
    const appName = `reset-order-${uniqueDb()}`;
    await withFlowsync({ appName }, async ({ fs, writer, dbName }) => {
      const db = writer.db(dbName);
      const client = await connected(fs, "order");
      await db.collection("nodes").insertOne({ flowId: "order", n: "before" });
      await client.until((x) => x.messages.length === 1, 10_000, "event before");
      // flowsync's next aggregate (the reopen after the invalidate) waits 1 s at the server, so the
      // write below is already there when it runs: it comes back in the new stream's first batch.
      await writer.db("admin").command({
        configureFailPoint: "failCommand",
        mode: { times: 1 },
        data: { failCommands: ["aggregate"], blockConnection: true, blockTimeMS: 1000, appName },
      });
      await db.dropDatabase();
      await db.collection("nodes").insertOne({ flowId: "order", n: "waiting" });
      await client.until((x) => x.messages.length === 3, 10_000, "RESET and the waiting change");
      expect(shape(client)).toEqual(["SYNC_CANVAS:before", "RESET:stream-invalidated", "SYNC_CANVAS:waiting"]);
      await client.close();
    });
  });

  it("a cursor from before a dropDatabase, resumed through MongoDB: the events up to the drop, RESET (stream-invalidated), then live events", async () => {
    // A replay buffer of 1: the resume runs a catch-up stream, which meets the invalidate.
    await withFlowsync({ env: { REPLAY_BUFFER_SIZE: "1" } }, async ({ fs, writer, dbName }) => {
      const db = writer.db(dbName);
      const first = await connected(fs, "drop");
      await db.collection("nodes").insertOne({ flowId: "drop", n: 1 });
      await first.until((x) => x.messages.length === 1, 10_000, "first event");
      await first.close();
      await db.collection("nodes").insertOne({ flowId: "drop", n: 2 });
      await db.dropDatabase();
      await db.collection("nodes").insertOne({ flowId: "drop", n: 3 });
      await eventually("the watcher's restart", () => expect(fs.watcher.restarts).toBe(1));

      const resumed = await connected(fs, "drop", first.lastEventId);
      await resumed.until((x) => x.messages.length === 2, 10_000, "the event before the drop and RESET");
      await db.collection("nodes").insertOne({ flowId: "drop", n: "live" });
      await resumed.until((x) => x.messages.length === 3, 10_000, "live event");
      // n: 3 was written after the drop and before this client came back: the RESET's refetch covers it.
      expect(shape(resumed)).toEqual(["SYNC_CANVAS:2", "RESET:stream-invalidated", "SYNC_CANVAS:live"]);
      expect(fs.subscriptions.counters.replayedFromMongo).toBe(1);
      await resumed.close();
    });
  });

  it.runIf(onSimulator)("the watcher's own position falls off the oplog: every subscriber gets RESET (history-lost), then live events", async () => {
    // Simulator only: a tiny oplog, overflowed while flowsync's getMore is held back by a fail point.
    const appName = `reset-${uniqueDb()}`;
    // A long await: the getMore waiting when the fail point is set is surely the one that returns the probe below.
    await withFlowsync({ oplogSize: 50, appName, env: { CHANGE_STREAM_AWAIT_MS: "10000" } }, async ({ fs, writer, dbName }) => {
      const db = writer.db(dbName);
      const clients = [await connected(fs, "lost-a"), await connected(fs, "lost-b")];
      for (const flowId of ["lost-a", "lost-b"]) await db.collection("nodes").insertOne({ flowId, n: "before" });
      for (const c of clients) await c.until((x) => x.messages.length === 1, 10_000, "event before");

      // flowsync's NEXT getMore waits 3 s at the server: the one after the getMore that returns the probe.
      await writer.db("admin").command({
        configureFailPoint: "failCommand",
        mode: { times: 1 },
        data: { failCommands: ["getMore"], blockConnection: true, blockTimeMS: 3000, appName },
      });
      for (const flowId of ["lost-a", "lost-b"]) await db.collection("nodes").insertOne({ flowId, n: "probe" });
      for (const c of clients) await c.until((x) => x.messages.length === 2, 10_000, "the probe");
      // One command, 100 oplog entries: the held getMore's position falls off the 50-entry oplog.
      await db.collection("unwatched").insertMany(Array.from({ length: 100 }, (_, n) => ({ n })));

      for (const c of clients) await c.until((x) => x.messages.length === 3, 10_000, "RESET");
      for (const flowId of ["lost-a", "lost-b"]) await db.collection("nodes").insertOne({ flowId, n: "after" });
      for (const c of clients) await c.until((x) => x.messages.length === 4, 10_000, "live event after the RESET");
      for (const c of clients) expect(shape(c)).toEqual(["SYNC_CANVAS:before", "SYNC_CANVAS:probe", "RESET:history-lost", "SYNC_CANVAS:after"]);
      expect(fs.watcher.restarts).toBe(1);
      expect(fs.feed.counters.resets).toBe(1);
      await Promise.all(clients.map((c) => c.close()));
    });
  });
});
