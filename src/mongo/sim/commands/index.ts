/**
 * Command dispatch: fail points first (as mongod checks failCommand before
 * running a command), then the handler, then the cluster-time gossip fields.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Binary, Long, type Document } from "bson";
import type { Ctx, Handler } from "../context";
import { Codes, engineError, RETRYABLE_WRITE_CODES, ServerError } from "../errors";
import * as admin from "./admin";
import * as ddl from "./ddl";
import * as read from "./read";
import * as write from "./write";

const HANDLERS: Record<string, Handler> = {
  hello: admin.hello,
  ismaster: admin.isMaster,
  isMaster: admin.isMaster,
  ping: admin.ping,
  buildInfo: admin.buildInfo,
  buildinfo: admin.buildInfo,
  getParameter: admin.getParameter,
  endSessions: admin.endSessions,
  killSessions: admin.killSessions,
  killAllSessions: admin.killAllSessions,
  killAllSessionsByPattern: admin.killAllSessions,
  commitTransaction: admin.commitTransaction,
  abortTransaction: admin.abortTransaction,
  configureFailPoint: admin.configureFailPoint,
  serverStatus: admin.serverStatus,
  replSetGetStatus: admin.replSetGetStatus,
  whatsmyuri: admin.whatsmyuri,
  connectionStatus: admin.connectionStatus,
  hostInfo: admin.hostInfo,
  insert: write.insert,
  update: write.update,
  delete: write.remove,
  findAndModify: write.findAndModify,
  findandmodify: write.findAndModify,
  find: read.find,
  getMore: read.getMore,
  killCursors: read.killCursors,
  aggregate: read.aggregate,
  count: read.count,
  distinct: read.distinct,
  create: ddl.create,
  drop: ddl.drop,
  dropDatabase: ddl.dropDatabase,
  renameCollection: ddl.renameCollection,
  collMod: ddl.collMod,
  createIndexes: ddl.createIndexes,
  dropIndexes: ddl.dropIndexes,
  deleteIndexes: ddl.dropIndexes,
  listIndexes: ddl.listIndexes,
  listCollections: ddl.listCollections,
  listDatabases: ddl.listDatabases,
};

const RETRYABLE_WRITES = new Set(["insert", "update", "delete", "findAndModify"]);

/** Returned instead of a reply when the connection must be cut (failCommand closeConnection). */
export const CLOSE_CONNECTION = Symbol("close connection");

export async function runCommand(body: Document, db: string, ctx: Ctx): Promise<Document | typeof CLOSE_CONNECTION> {
  const name = Object.keys(body)[0] ?? "";
  let reply: Document;
  try {
    const injected = ctx.server.failPoints.check("failCommand", {
      command: name,
      appName: ctx.conn.appName,
      ns: typeof body[name] === "string" ? `${db}.${body[name]}` : undefined,
    });
    if (injected?.blockConnection) await sleep(Number(injected.blockTimeMS ?? 0));
    if (injected?.closeConnection) return CLOSE_CONNECTION;
    if (injected?.errorCode !== undefined) {
      reply = injectedError(name, body, injected, ctx);
    } else {
      reply = await execute(name, body, db, ctx);
      // A new object: the reply may be the one a retryable write keeps for its retries.
      if (injected?.writeConcernError && reply.ok === 1) reply = injectedWriteConcernError(name, body, reply, injected);
    }
  } catch (err) {
    reply = engineError(err).toReply();
  }
  return withClusterTime(reply, ctx);
}

async function execute(name: string, body: Document, db: string, ctx: Ctx): Promise<Document> {
  ctx.server.sessionCache.touch(body.lsid);
  const handler = HANDLERS[name];
  if (!handler) throw new ServerError(Codes.CommandNotFound, `no such command: '${name}'`);
  const { sessions, store } = ctx.server;
  const txn = sessions.statement(name, body);
  if (!txn) return withWriteConcern(name, body, await sessions.retryable(name, body, async () => handler(body, db, { ...ctx, data: store })));
  if (name === "commitTransaction" || name === "abortTransaction") return withWriteConcern(name, body, await handler(body, db, { ...ctx, txn, data: store }));
  try {
    const reply = await handler(body, db, { ...ctx, txn, data: sessions.view(txn) });
    if (reply.writeErrors) sessions.statementFailed(txn);
    return reply;
  } catch (err) {
    // Any failed statement aborts its transaction, as on mongod.
    sessions.statementFailed(txn);
    throw err;
  }
}

/** Commands that take a write concern (a single-node set can acknowledge w: 1 / "majority" only). */
const WRITE_CONCERN_COMMANDS = new Set([
  ...RETRYABLE_WRITES,
  "findandmodify",
  "commitTransaction",
  "abortTransaction",
  "create",
  "drop",
  "dropDatabase",
  "createIndexes",
  "dropIndexes",
  "renameCollection",
  "collMod",
]);

/**
 * A write concern this one-member set cannot satisfy still lets the write happen; the reply
 * says so in `writeConcernError`, as mongod's does (UnsatisfiableWriteConcern for w > 1,
 * UnknownReplWriteConcern for an unknown tag set).
 */
function withWriteConcern(name: string, body: Document, reply: Document): Document {
  const w = (body.writeConcern as Document | undefined)?.w;
  if (!WRITE_CONCERN_COMMANDS.has(name) || reply.ok !== 1 || reply.writeConcernError || w === undefined) return reply;
  if (typeof w === "number" && w > 1) {
    return {
      ...reply,
      writeConcernError: { code: Codes.UnsatisfiableWriteConcern, codeName: "UnsatisfiableWriteConcern", errmsg: "Not enough data-bearing nodes" },
    };
  }
  if (typeof w === "string" && w !== "majority") {
    return {
      ...reply,
      writeConcernError: {
        code: Codes.UnknownReplWriteConcern,
        codeName: "UnknownReplWriteConcern",
        errmsg: `No write concern mode named '${w}' found in replica set configuration`,
      },
    };
  }
  return reply;
}

/** Codes mongod labels TransientTransactionError on a statement inside a transaction. */
const TRANSIENT_IN_TRANSACTION = new Set([Codes.WriteConflict, Codes.NoSuchTransaction, 24 /* LockTimeout */, ...RETRYABLE_WRITE_CODES]);

/**
 * The command ran; the fail point says its write concern failed. Without explicit labels,
 * mongod labels a retryable write concern error of a retryable write (or of commit/abort)
 * RetryableWriteError, so that the driver retries it; never inside a transaction's statements.
 */
function injectedWriteConcernError(name: string, body: Document, reply: Document, data: Document): Document {
  const wce = data.writeConcernError as Document;
  const endsTransaction = name === "commitTransaction" || name === "abortTransaction";
  const retryable = (RETRYABLE_WRITES.has(name) && body.autocommit === undefined) || endsTransaction;
  const labels =
    (data.errorLabels as string[] | undefined) ??
    (retryable && body.txnNumber !== undefined && RETRYABLE_WRITE_CODES.has(wce.code) ? ["RetryableWriteError"] : []);
  return { ...reply, writeConcernError: wce, ...(labels.length > 0 ? { errorLabels: labels } : {}) };
}

function injectedError(name: string, body: Document, data: Document, ctx: Ctx): Document {
  let labels = data.errorLabels as string[] | undefined;
  const inTransaction = body.autocommit === false;
  const endsTransaction = name === "commitTransaction" || name === "abortTransaction";
  // Without explicit labels a real server labels the error as it would its own (docs/mongodb.md#fail-points):
  // retryable writes and commit/abort get RetryableWriteError for retryable codes; statements of a
  // transaction get TransientTransactionError (and never RetryableWriteError).
  if (labels === undefined) {
    if (inTransaction && !endsTransaction) {
      if (TRANSIENT_IN_TRANSACTION.has(data.errorCode)) labels = ["TransientTransactionError"];
    } else if (endsTransaction && data.errorCode === Codes.NoSuchTransaction) {
      labels = ["TransientTransactionError"];
    } else if ((RETRYABLE_WRITES.has(name) || endsTransaction) && body.txnNumber !== undefined && RETRYABLE_WRITE_CODES.has(data.errorCode)) {
      labels = ["RetryableWriteError"];
    }
  }
  // A failed statement aborts its transaction; a failed commit or abort leaves it for the retry.
  if (inTransaction && !endsTransaction) ctx.server.sessions.failStatement(body);
  return new ServerError(data.errorCode, `Failing command via 'failCommand' failpoint`, labels).toReply();
}

const NO_SIGNATURE = { hash: new Binary(Buffer.alloc(20)), keyId: Long.fromNumber(0) };

function withClusterTime(reply: Document, { server }: Ctx): Document {
  if (server.setName === undefined) return reply;
  const now = server.oplog.lastTs;
  return { ...reply, $clusterTime: { clusterTime: now, signature: NO_SIGNATURE }, operationTime: now };
}
