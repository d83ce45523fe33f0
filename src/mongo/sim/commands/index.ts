/**
 * Command dispatch: fail points first (as mongod checks failCommand before
 * running a command), then the handler, then the cluster-time gossip fields.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Binary, Long, type Document } from "bson";
import { notImplemented, type Ctx, type Handler } from "../context";
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
  killSessions: admin.sessionsNoop,
  killAllSessions: admin.sessionsNoop,
  killAllSessionsByPattern: admin.sessionsNoop,
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
      reply = injectedError(name, body, injected);
    } else {
      reply = await execute(name, body, db, ctx);
      if (injected?.writeConcernError && reply.ok === 1) reply.writeConcernError = injected.writeConcernError;
    }
  } catch (err) {
    reply = engineError(err).toReply();
  }
  return withClusterTime(reply, ctx);
}

async function execute(name: string, body: Document, db: string, ctx: Ctx): Promise<Document> {
  ctx.server.sessionCache.touch(body.lsid);
  if (body.startTransaction || body.autocommit === false) notImplemented("multi-document transactions");
  const handler = HANDLERS[name];
  if (!handler) throw new ServerError(Codes.CommandNotFound, `no such command: '${name}'`);
  return handler(body, db, ctx);
}

function injectedError(name: string, body: Document, data: Document): Document {
  let labels = data.errorLabels as string[] | undefined;
  // Without explicit labels a real server labels retryable errors of retryable writes (docs/mongodb.md#fail-points).
  if (labels === undefined && RETRYABLE_WRITES.has(name) && body.txnNumber !== undefined && RETRYABLE_WRITE_CODES.has(data.errorCode)) {
    labels = ["RetryableWriteError"];
  }
  return new ServerError(data.errorCode, `Failing command via 'failCommand' failpoint`, labels).toReply();
}

const NO_SIGNATURE = { hash: new Binary(Buffer.alloc(20)), keyId: Long.fromNumber(0) };

function withClusterTime(reply: Document, { server }: Ctx): Document {
  if (server.setName === undefined) return reply;
  const now = server.oplog.lastTs;
  return { ...reply, $clusterTime: { clusterTime: now, signature: NO_SIGNATURE }, operationTime: now };
}
