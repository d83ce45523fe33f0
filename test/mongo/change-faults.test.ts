/**
 * Resume after each resumable fault with nothing lost or repeated (change-streams
 * spec "Resumable Error"; spec tests change-streams-resume-allowlist.json and
 * change-streams-resume-errorLabels.json). Fail points are scoped to this file's
 * client by appName, so they cannot hit another file's client on a shared mongod.
 */
import { describe, expect, it } from "vitest";
import type { ChangeStream, Document } from "mongodb";
import {
  coll,
  expectCode,
  failPoint,
  failPointOff,
  getMoreWaiting,
  insertThroughFaults,
  isSim,
  nextEvents,
  openStream,
  recordCommands,
  startReading,
  uniqueDb,
  useBackend,
} from "./helpers";

/**
 * Codes a 7.0 server labels ResumableChangeStreamError on a change-stream getMore
 * (change-streams-resume-errorLabels.json; its StaleShardVersion (63) case stops at 6.0.99).
 */
const RESUMABLE = [6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 150, 234, 133];

describe("resuming after faults", () => {
  const h = useBackend({}, { monitorCommands: true });

  /**
   * Inserts 1..3 and reads them, arms the fault, inserts 4..6 and reads them
   * through the fault, then 7..8. Returns every _id received and the number of
   * aggregates sent (2 = the initial one + one resume).
   */
  async function throughFault(arm: (stream: ChangeStream<Document, Document>) => Promise<void>, streamOptions = {}) {
    const c = coll(h.client.db(uniqueDb()), "c");
    const rec = recordCommands(h.client);
    const stream = await openStream(c, [], streamOptions);
    const received: unknown[] = [];
    const read = async (n: number) => received.push(...(await nextEvents(stream, n)).map((e) => e.documentKey._id));
    try {
      await c.insertMany([{ _id: 1 }, { _id: 2 }, { _id: 3 }]);
      await read(3);
      await arm(stream);
      await c.insertMany([{ _id: 4 }, { _id: 5 }, { _id: 6 }]);
      await read(3);
      await c.insertMany([{ _id: 7 }, { _id: 8 }]);
      await read(2);
    } finally {
      rec.stop();
      await stream.close();
    }
    const aggregates = rec.seen.filter((e) => e.commandName === "aggregate" && e.databaseName === c.dbName).length;
    return { received, aggregates };
  }

  const ALL = [1, 2, 3, 4, 5, 6, 7, 8];

  /** Fail point `name` fires once amid the writes: one resume (a second aggregate), nothing lost or repeated. */
  async function expectOneResume(name: string, data: Document): Promise<void> {
    try {
      const { received, aggregates } = await throughFault(() => failPoint(h.client, name, { times: 1 }, data, h.appName).then(() => {}));
      expect(received).toEqual(ALL);
      expect(aggregates).toBe(2);
    } finally {
      await failPointOff(h.client, name);
    }
  }

  describe.each(RESUMABLE)("failGetMoreAfterCursorCheckout with code %i", (code) => {
    it("resumes once, losing and repeating nothing", async () => {
      await expectOneResume("failGetMoreAfterCursorCheckout", { errorCode: code });
    });
  });

  it("failCommand closeConnection on getMore: resumes after the network error", async () => {
    await expectOneResume("failCommand", { failCommands: ["getMore"], closeConnection: true });
  });

  it("failCommand errorCode with the ResumableChangeStreamError label: resumes", async () => {
    await expectOneResume("failCommand", { failCommands: ["getMore"], errorCode: 50, errorLabels: ["ResumableChangeStreamError"] });
  });

  it("failCommand CursorNotFound (43): resumes even without a label", async () => {
    await expectOneResume("failCommand", { failCommands: ["getMore"], errorCode: 43 });
  });

  it("failGetMoreAfterCursorCheckout with CursorNotFound (43): resumed by the driver on the code alone", async () => {
    await expectOneResume("failGetMoreAfterCursorCheckout", { errorCode: 43 });
  });

  it("failCommand with a resumable code but no label: the error surfaces, no resume", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    const stream = await openStream(c);
    const rec = recordCommands(h.client);
    try {
      await failPoint(h.client, "failCommand", { times: 1 }, { failCommands: ["getMore"], errorCode: 6 }, h.appName);
      await c.insertOne({ _id: 1 });
      const err = await expectCode(stream.next(), 6);
      expect(err.hasErrorLabel("ResumableChangeStreamError")).toBe(false);
    } finally {
      rec.stop();
      await failPointOff(h.client, "failCommand");
      await stream.close();
    }
    expect(rec.names().filter((n) => n === "aggregate")).toEqual([]);
  });

  it("a non-resumable error on getMore (failGetMoreAfterCursorCheckout, code 2) surfaces", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    const stream = await openStream(c);
    try {
      await failPoint(h.client, "failGetMoreAfterCursorCheckout", { times: 1 }, { errorCode: 2 }, h.appName);
      await c.insertOne({ _id: 1 });
      await expectCode(stream.next(), 2);
    } finally {
      await failPointOff(h.client, "failGetMoreAfterCursorCheckout");
      await stream.close();
    }
  });

  it.runIf(isSim)("sim.dropConnections() while a getMore waits (simulator knob: a network cut): resumes", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    const stream = c.watch([], { maxAwaitTimeMS: 5_000 });
    const { first } = await startReading(stream);
    const rec = recordCommands(h.client);
    const received: unknown[] = [];
    try {
      await c.insertMany([{ _id: 1 }, { _id: 2 }, { _id: 3 }]);
      received.push((await first).documentKey._id as number, ...(await nextEvents(stream, 2)).map((e) => e.documentKey._id));
      const pending = stream.next();
      // Cut once its getMore waits at the server, not after a guessed pause.
      await getMoreWaiting(await h.newClient(), `${c.dbName}.c`); // not h.client: its commands are the ones counted below
      h.backend.sim!.dropConnections();
      await insertThroughFaults(c, [{ _id: 4 }, { _id: 5 }, { _id: 6 }]);
      received.push(((await pending) as Document).documentKey._id, ...(await nextEvents(stream, 2)).map((e) => e.documentKey._id));
      await c.insertMany([{ _id: 7 }, { _id: 8 }]);
      received.push(...(await nextEvents(stream, 2)).map((e) => e.documentKey._id));
    } finally {
      rec.stop();
      await stream.close();
    }
    expect(received).toEqual(ALL);
    expect(rec.names().filter((n) => n === "aggregate")).toHaveLength(1);
  });
});
