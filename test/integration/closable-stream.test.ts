/**
 * ClosableChangeStream through the real driver: close() at any moment leaves no
 * server cursor behind, also when it meets a getMore in flight.
 */
import { MongoClient, type CommandSucceededEvent } from "mongodb";
import { describe, expect, it } from "vitest";
import { ClosableChangeStream } from "../../src/watch/closable-stream";
import { uniqueDb, useBackend } from "../support/backend";
import { eventually } from "../support/eventually";
import { changeStreamCursors } from "../support/server-view";

const h = useBackend();

describe("ClosableChangeStream.close()", () => {
  it("as the reply of a getMore in flight comes in: the server cursor is released", async () => {
    // A client of its own: its one pooled connection carries the getMore, so the driver's killCursors needs a
    // new one, and the getMore's reply lands while that connection is being made (the race seen under load).
    const client = new MongoClient(h.backend.url, { monitorCommands: true });
    const dbName = uniqueDb("cs");
    try {
      await client.db(dbName).collection("c").insertOne({ n: 1 });
      const stream = new ClosableChangeStream(client.db(dbName).watch([], { maxAwaitTimeMS: 50 }));
      expect(await stream.tryNext()).toBeNull(); // the aggregate and a first, empty getMore
      expect(await changeStreamCursors(h.client, dbName)).toBe(1);
      let closing: Promise<void> | undefined;
      client.on("commandSucceeded", (e: CommandSucceededEvent) => {
        if (e.commandName === "getMore" && e.databaseName === dbName) closing ??= stream.close();
      });
      const next = stream.tryNext();
      expect(await next).toBeNull();
      expect(closing).toBeDefined();
      await closing;
      expect(stream.closed).toBe(true);
      expect(await changeStreamCursors(h.client, dbName)).toBe(0);
      // Closed: no further getMore is sent.
      expect(await stream.tryNext()).toBeNull();
      expect(await changeStreamCursors(h.client, dbName)).toBe(0);
    } finally {
      await client.close();
    }
  });

  it("while a getMore waits for changes, and again: the server cursor is released", async () => {
    const client = new MongoClient(h.backend.url);
    const dbName = uniqueDb("cs");
    try {
      await client.db(dbName).collection("c").insertOne({ n: 1 });
      const stream = new ClosableChangeStream(client.db(dbName).watch([], { maxAwaitTimeMS: 200 }));
      expect(await stream.tryNext()).toBeNull();
      const next = stream.tryNext();
      await Promise.all([stream.close(), stream.close()]);
      await next.catch(() => null); // its changes, if any came, are nobody's now
      expect(stream.closed).toBe(true);
      expect(await changeStreamCursors(h.client, dbName)).toBe(0);
    } finally {
      await client.close();
    }
  });

  it("while a getMore hangs: close() stops waiting after settleMs and releases the server cursor", async () => {
    const appName = "closable-hang";
    const client = new MongoClient(h.backend.url, { appName });
    const dbName = uniqueDb("cs");
    const admin = h.client.db("admin");
    try {
      await client.db(dbName).collection("c").insertOne({ n: 1 });
      const stream = new ClosableChangeStream(client.db(dbName).watch([], { maxAwaitTimeMS: 50 }), { settleMs: 100 });
      expect(await stream.tryNext()).toBeNull();
      // The next getMore of this client is held at the server far beyond any test timeout: a hung connection.
      await admin.command({
        configureFailPoint: "failCommand",
        mode: { times: 1 },
        data: { failCommands: ["getMore"], blockConnection: true, blockTimeMS: 600_000, appName },
      });
      const hung = stream.tryNext();
      hung.catch(() => undefined);
      await eventually("the getMore is held", async () => expect(await heldGetMores(h.client, appName)).toBe(1));
      await stream.close(); // would wait 600 s for the getMore without the bound
      expect(stream.closed).toBe(true);
      expect(await changeStreamCursors(h.client, dbName)).toBe(0);
    } finally {
      await admin.command({ configureFailPoint: "failCommand", mode: "off" }).catch(() => undefined);
      await client.close(true);
    }
  });
});

/** getMores of `appName` running at the server now. */
async function heldGetMores(admin: MongoClient, appName: string): Promise<number> {
  const ops = await admin
    .db("admin")
    .aggregate<{ appName?: string; command?: { getMore?: unknown } }>([{ $currentOp: { allUsers: true } }])
    .toArray();
  return ops.filter((op) => op.appName === appName && op.command?.getMore !== undefined).length;
}
