/**
 * configureFailPoint / failCommand as a real mongod offers them with
 * enableTestCommands=1 (unified test format "Server Fail Points"). Every fail
 * point is scoped to this file's appName and turned off after each test.
 */
import { afterEach, describe, expect, it } from "vitest";
import { MongoNetworkError, MongoServerError, MongoWriteConcernError, type MongoClient } from "mongodb";
import { coll, failPoint, failPointOff, recordCommands, uniqueDb, useBackend } from "./helpers";

describe("fail points", () => {
  const h = useBackend({}, { monitorCommands: true, retryReads: false });
  afterEach(() => failPointOff(h.client, "failCommand"));

  const fc = (mode: unknown, data: Record<string, unknown>) => failPoint(h.client, "failCommand", mode, { failCommands: ["find"], ...data }, h.appName);
  /** One find on a fresh collection: "ok", or the error code / "network". */
  async function find(client: MongoClient = h.client): Promise<number | string> {
    try {
      await coll(client.db(uniqueDb()), "c").findOne({});
      return "ok";
    } catch (err) {
      if (err instanceof MongoNetworkError) return "network";
      if (err instanceof MongoServerError) return err.code as number;
      throw err;
    }
  }
  const finds = async (n: number) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await find());
    return out;
  };

  it("times: fails exactly n times, then turns itself off", async () => {
    const reply = await fc({ times: 2 }, { errorCode: 2 });
    expect(reply.ok).toBe(1);
    expect(await finds(4)).toEqual([2, 2, "ok", "ok"]);
  });

  it("alwaysOn fails until turned off; off replies with the number of times it fired", async () => {
    await fc("alwaysOn", { errorCode: 2 });
    expect(await finds(3)).toEqual([2, 2, 2]);
    const off = await h.client.db("admin").command({ configureFailPoint: "failCommand", mode: "off" });
    expect(off.count).toBe(3);
    expect(await finds(1)).toEqual(["ok"]);
  });

  it("skip: lets n commands through, then fails", async () => {
    await fc({ skip: 2 }, { errorCode: 2 });
    expect(await finds(4)).toEqual(["ok", "ok", 2, 2]);
  });

  it("only the listed commands fail", async () => {
    await fc("alwaysOn", { errorCode: 2 });
    const c = coll(h.client.db(uniqueDb()), "c");
    await c.insertOne({ _id: 1 });
    expect(await c.countDocuments()).toBe(1);
    expect(await find()).toBe(2);
  });

  it("errorCode without errorLabels: a plain error with no labels", async () => {
    await fc({ times: 1 }, { errorCode: 2 });
    const err: MongoServerError = await coll(h.client.db(uniqueDb()), "c")
      .findOne({})
      .catch((e) => e);
    expect(err).toBeInstanceOf(MongoServerError);
    expect(err.code).toBe(2);
    expect(err.errorLabels).toEqual([]);
  });

  it("errorCode with errorLabels: exactly those labels", async () => {
    await fc({ times: 1 }, { errorCode: 2, errorLabels: ["SomeLabel", "Other"] });
    const err: MongoServerError = await coll(h.client.db(uniqueDb()), "c")
      .findOne({})
      .catch((e) => e);
    expect(err.code).toBe(2);
    expect([...err.errorLabels].sort()).toEqual(["Other", "SomeLabel"]);
  });

  it("closeConnection: the command does not run and the client sees a network error", async () => {
    await fc({ times: 1 }, { closeConnection: true });
    expect(await finds(2)).toEqual(["network", "ok"]);
  });

  it("blockConnection/blockTimeMS: the command is delayed, then succeeds", async () => {
    await fc({ times: 1 }, { blockConnection: true, blockTimeMS: 400 });
    const started = Date.now();
    expect(await find()).toBe("ok");
    // Generous lower bound: a blocked command cannot come back in a small fraction of the block.
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });

  it("appName: only connections whose handshake named that application are affected", async () => {
    const other = await h.newClient({ appName: `${h.appName}-other`, retryReads: false });
    await fc("alwaysOn", { errorCode: 2 });
    expect(await find(other)).toBe("ok");
    expect(await find()).toBe(2);
  });

  it("namespace: only commands on that namespace are affected", async () => {
    const db = h.client.db(uniqueDb());
    await failPoint(h.client, "failCommand", "alwaysOn", { failCommands: ["find"], errorCode: 2, namespace: `${db.databaseName}.target` }, h.appName);
    expect(await coll(db, "other").findOne({})).toBeNull();
    const err = await coll(db, "target")
      .findOne({})
      .catch((e) => e);
    expect(err.code).toBe(2);
  });

  it("writeConcernError: the write happens and the error is reported", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    await failPoint(
      h.client,
      "failCommand",
      { times: 1 },
      { failCommands: ["insert"], writeConcernError: { code: 100, errmsg: "UnsatisfiableWriteConcern" } },
      h.appName,
    );
    const err = await c.insertOne({ _id: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(MongoWriteConcernError);
    expect(await c.countDocuments()).toBe(1);
  });

  describe("retryable writes", () => {
    it("an insert whose connection is closed is retried once: exactly one document", async () => {
      const c = coll(h.client.db(uniqueDb()), "c");
      const rec = recordCommands(h.client);
      await failPoint(h.client, "failCommand", { times: 1 }, { failCommands: ["insert"], closeConnection: true }, h.appName);
      await c.insertOne({ _id: 1, v: "once" });
      rec.stop();
      expect(rec.names().filter((n) => n === "insert")).toHaveLength(2);
      expect(await c.find().toArray()).toEqual([{ _id: 1, v: "once" }]);
    });

    it("a retryable error code on insert gets RetryableWriteError from the server and is retried", async () => {
      const c = coll(h.client.db(uniqueDb()), "c");
      await failPoint(h.client, "failCommand", { times: 1 }, { failCommands: ["insert"], errorCode: 91 }, h.appName);
      await c.insertOne({ _id: 1 });
      expect(await c.countDocuments()).toBe(1);
    });

    it("errorLabels: [] suppresses RetryableWriteError, so the error surfaces", async () => {
      const c = coll(h.client.db(uniqueDb()), "c");
      await failPoint(h.client, "failCommand", { times: 1 }, { failCommands: ["insert"], errorCode: 91, errorLabels: [] }, h.appName);
      const err = await c.insertOne({ _id: 1 }).catch((e) => e);
      expect(err.code).toBe(91);
      expect(await c.countDocuments()).toBe(0);
    });
  });

  it("an unknown fail point name is refused", async () => {
    const err = await h.client
      .db("admin")
      .command({ configureFailPoint: "noSuchFailPoint", mode: "alwaysOn" })
      .catch((e) => e);
    expect(err).toBeInstanceOf(MongoServerError);
  });
});
