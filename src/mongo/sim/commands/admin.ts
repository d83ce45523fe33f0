/** Handshake and server-level commands (docs/mongodb.md#hello-reply, #commands-the-test-runner-sends). */
import { Long, ObjectId, type Document } from "bson";
import { MAX_WIRE_VERSION, SERVER_VERSION, type Ctx, type Handler } from "../context";
import { Codes, fail } from "../errors";

// Constant, so the driver never sees an older (electionId, setVersion) pair and marks us stale.
const ELECTION_ID = new ObjectId("7fffffff0000000000000001");

/** `hello` / `isMaster` / `ismaster`: a writable primary of a one-member set (or a standalone). */
export function helloReply(ctx: Ctx, legacy: boolean): Document {
  const { server, conn } = ctx;
  const reply: Document = {
    ...(legacy ? { ismaster: true } : {}),
    isWritablePrimary: true,
    helloOk: true,
    // No topologyVersion: the driver then polls instead of streaming (docs/mongodb.md#monitoring-polling-not-streaming).
    maxBsonObjectSize: 16 * 1024 * 1024,
    maxMessageSizeBytes: 48_000_000,
    maxWriteBatchSize: 100_000,
    localTime: new Date(),
    logicalSessionTimeoutMinutes: 30,
    connectionId: conn.id,
    minWireVersion: 0,
    maxWireVersion: MAX_WIRE_VERSION,
    readOnly: false,
  };
  if (server.setName !== undefined) {
    const lastWriteDate = new Date(server.oplog.lastTs.t * 1000);
    const opTime = { ts: server.oplog.lastTs, t: Long.fromNumber(1) };
    Object.assign(reply, {
      hosts: [server.me],
      setName: server.setName,
      setVersion: 1,
      electionId: ELECTION_ID,
      primary: server.me,
      me: server.me,
      secondary: false,
      lastWrite: { opTime, lastWriteDate, majorityOpTime: opTime, majorityWriteDate: lastWriteDate },
    });
  }
  return { ...reply, ok: 1 };
}

export const hello: Handler = (_cmd, _db, ctx) => helloReply(ctx, false);
export const isMaster: Handler = (_cmd, _db, ctx) => helloReply(ctx, true);

export const ping: Handler = () => ({ ok: 1 });

export const buildInfo: Handler = () => ({
  version: SERVER_VERSION.join("."),
  gitVersion: "flowsync-simulator",
  versionArray: [...SERVER_VERSION, 0],
  bits: 64,
  debug: false,
  maxBsonObjectSize: 16 * 1024 * 1024,
  storageEngines: ["simulator"],
  modules: [],
  ok: 1,
});

export const getParameter: Handler = () => ({ featureCompatibilityVersion: { version: "7.0" }, enableTestCommands: true, ok: 1 });

/** Ending or killing a session aborts its open transaction (docs: endSessions, killSessions). */
export const endSessions: Handler = (cmd, _db, { server }) => {
  server.sessions.end(lsidList(cmd.endSessions));
  server.sessionCache.end(cmd.endSessions);
  return { ok: 1 };
};

export const killSessions: Handler = (cmd, _db, { server }) => {
  server.sessions.end(lsidList(cmd.killSessions));
  return { ok: 1 };
};

/** Without authentication every session belongs to the same (no) user: all of them go. */
export const killAllSessions: Handler = (_cmd, _db, { server }) => {
  server.sessions.endAll();
  return { ok: 1 };
};

function lsidList(value: unknown): Document[] {
  if (!Array.isArray(value)) fail(Codes.TypeMismatch, "expected an array of session ids");
  return value as Document[];
}

/** commitTransaction / abortTransaction: run on admin, in the transaction they end (dispatch resolved it). */
export const commitTransaction: Handler = (cmd, db, ctx) => endTransaction("commitTransaction", cmd, db, ctx);
export const abortTransaction: Handler = (cmd, db, ctx) => endTransaction("abortTransaction", cmd, db, ctx);

function endTransaction(name: string, _cmd: Document, db: string, ctx: Ctx): Document {
  if (db !== "admin") fail(Codes.Unauthorized, `${name} may only be run against the admin database.`);
  if (!ctx.txn) fail(Codes.InvalidOptions, `${name} must be run within a transaction`);
  return name === "commitTransaction" ? ctx.server.sessions.commit(ctx.txn) : ctx.server.sessions.abortCommand(ctx.txn);
}

export const configureFailPoint: Handler = (cmd, db, { server }) => {
  if (db !== "admin") return { ok: 0, errmsg: "configureFailPoint may only be run against the admin database.", code: 13, codeName: "Unauthorized" };
  return server.failPoints.configure(cmd);
};

export const serverStatus: Handler = (_cmd, _db, { server }) => {
  const open = server.cursors.list();
  return {
    host: server.me,
    version: SERVER_VERSION.join("."),
    process: "mongod",
    uptime: Math.floor((Date.now() - server.startedAt.getTime()) / 1000),
    localTime: new Date(),
    metrics: { cursor: { open: { total: Long.fromNumber(open.length), noTimeout: Long.fromNumber(0), pinned: Long.fromNumber(0) } } },
    ok: 1,
  };
};

export const replSetGetStatus: Handler = (_cmd, _db, { server }) => {
  if (server.setName === undefined) return { ok: 0, errmsg: "not running with --replSet", code: 76, codeName: "NoReplicationEnabled" };
  return {
    set: server.setName,
    date: new Date(),
    myState: 1,
    members: [{ _id: 0, name: server.me, health: 1, state: 1, stateStr: "PRIMARY", self: true, optime: { ts: server.oplog.lastTs, t: Long.fromNumber(1) } }],
    ok: 1,
  };
};

export const whatsmyuri: Handler = () => ({ you: "127.0.0.1:0", ok: 1 });

export const connectionStatus: Handler = () => ({ authInfo: { authenticatedUsers: [], authenticatedUserRoles: [] }, ok: 1 });

export const hostInfo: Handler = () => ({ system: { currentTime: new Date(), hostname: "flowsync-simulator", numCores: 1 }, os: { type: "Linux" }, ok: 1 });
