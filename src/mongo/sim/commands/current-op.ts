/**
 * `$currentOp` (docs: reference/operator/aggregation/currentOp): one document per
 * active operation, plus idle connections with `idleConnections: true` and idle
 * cursors with `idleCursors: true`, in mongod's shapes (the fields tests and
 * tools filter on: type, active, connectionId, client, appName, ns, cursor).
 */
import { Long, type Document } from "bson";
import type { Connection, Ctx } from "../context";

export function currentOp(ctx: Ctx, options: Document): Document[] {
  const { server } = ctx;
  const out: Document[] = [];
  for (const conn of server.connections) {
    // The connection running this aggregate is itself an active op.
    const active = conn.busy || conn === ctx.conn;
    if (active || options.idleConnections === true) out.push(connectionOp(conn, active, server.me));
  }
  if (options.idleCursors === true) {
    for (const c of server.cursors.list()) {
      if (c.pinned) continue;
      out.push({
        type: "idleCursor",
        host: server.me,
        ns: c.ns,
        cursor: {
          cursorId: Long.fromNumber(c.id),
          createdDate: c.createdAt,
          lastAccessDate: c.lastUsed,
          originatingCommand: c.originatingCommand,
          tailable: c.kind === "changeStream",
          awaitData: c.kind === "changeStream",
          noCursorTimeout: false,
        },
      });
    }
  }
  return out;
}

function connectionOp(conn: Connection, active: boolean, host: string): Document {
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
