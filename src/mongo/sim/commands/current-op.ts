/**
 * `$currentOp` (docs: reference/operator/aggregation/currentOp): one document per
 * active operation (with its `command`, and for a getMore the `cursor` it has
 * pinned, as mongod ≥ 4.2 reports them), plus idle connections with
 * `idleConnections: true` and unpinned cursors with `idleCursors: true`.
 */
import { Long, type Document } from "bson";
import type { Connection, Ctx } from "../context";
import type { Cursor } from "../cursors";

export function currentOp(ctx: Ctx, options: Document): Document[] {
  const { server } = ctx;
  const out: Document[] = [];
  for (const conn of server.connections) {
    if (conn.op) out.push(activeOp(ctx, conn));
    else if (options.idleConnections === true) out.push(connectionFields(conn, server.me, false));
  }
  if (options.idleCursors === true) {
    for (const c of server.cursors.list()) {
      if (!c.pinned) out.push({ type: "idleCursor", host: server.me, ns: c.ns, cursor: cursorFields(c) });
    }
  }
  return out;
}

const OP_TYPES: Record<string, string> = { insert: "insert", update: "update", delete: "remove", find: "query", getMore: "getmore" };

function activeOp(ctx: Ctx, conn: Connection): Document {
  const { command, db, opid, startedAt } = conn.op!;
  const name = Object.keys(command)[0] ?? "";
  const target = command[name];
  const cursor = name === "getMore" ? ctx.server.cursors.get(Number(target)) : undefined;
  const micros = (Date.now() - startedAt) * 1000;
  return {
    ...connectionFields(conn, ctx.server.me, true),
    opid,
    secs_running: Long.fromNumber(Math.floor(micros / 1e6)),
    microsecs_running: Long.fromNumber(micros),
    op: OP_TYPES[name] ?? "command",
    ns: cursor ? cursor.ns : typeof target === "string" ? `${db}.${target}` : `${db}.$cmd`,
    command,
    ...(cursor ? { cursor: cursorFields(cursor) } : {}),
  };
}

function connectionFields(conn: Connection, host: string, active: boolean): Document {
  return {
    type: "op",
    host,
    desc: `conn${conn.id}`,
    connectionId: conn.id,
    client: conn.client,
    ...(conn.appName !== undefined ? { appName: conn.appName } : {}),
    ...(conn.clientMetadata ? { clientMetadata: conn.clientMetadata } : {}),
    active,
    currentOpTime: new Date().toISOString(),
  };
}

function cursorFields(c: Cursor): Document {
  return {
    cursorId: Long.fromNumber(c.id),
    createdDate: c.createdAt,
    lastAccessDate: c.lastUsed,
    originatingCommand: c.originatingCommand,
    tailable: c.kind === "changeStream",
    awaitData: c.kind === "changeStream",
    noCursorTimeout: false,
  };
}
