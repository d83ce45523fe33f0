/**
 * What the MongoDB server sees of a client: its open change-stream cursors and
 * its connections. Asked through the driver (`$currentOp`), so the same helper
 * works on the simulator and on a real mongod.
 */
import type { Document, MongoClient } from "mongodb";
import type { TestBackend } from "./backend";

/**
 * Open change-stream cursors on database `db`, counted once each.
 *
 * `idleCursors: true` lists cursors nobody is using right now (type "idleCursor",
 * with `cursor.originatingCommand`). On a real mongod a change stream spends most
 * of its life inside an awaitData getMore: that cursor shows up as an active op
 * instead (type "op", `command.getMore`, and — since 4.2 — the same `cursor`
 * sub-document; older servers put `originatingCommand` at the top level).
 * An aggregate still opening its stream has no cursor id yet: counted too.
 * Throws if the server lists active operations without their command: it
 * would hide exactly the cursors this counts.
 */
export async function changeStreamCursors(admin: MongoClient, db: string): Promise<number> {
  const ops = await admin
    .db("admin")
    .aggregate<Document>([{ $currentOp: { idleCursors: true, allUsers: true } }])
    .toArray();
  const blind = ops.find((op) => op.active === true && op.connectionId !== undefined && op.command === undefined);
  if (blind) {
    // Without `command` (and `cursor` for a getMore) a cursor pinned by a running getMore is invisible: an
    // awaiting change stream would count as none. mongod ≥ 4.2 reports both (SERVER-37003, SERVER-37006).
    throw new Error(
      `$currentOp lists an active operation without its command (${blind.desc ?? `conn${blind.connectionId}`}): cannot count change-stream cursors`,
    );
  }
  const ids = new Set<string>();
  let opening = 0;
  for (const op of ops) {
    const origin = (op.cursor?.originatingCommand ?? op.originatingCommand) as Document | undefined;
    if (origin && isChangeStreamOn(origin, db)) {
      ids.add(String(op.cursor?.cursorId ?? op.command?.getMore ?? `${op.opid}`));
    } else if (!origin && op.command?.aggregate !== undefined && isChangeStreamOn(op.command, db)) {
      opening++;
    }
  }
  return ids.size + opening;
}

function isChangeStreamOn(command: Document, db: string): boolean {
  const first = Array.isArray(command.pipeline) ? (command.pipeline[0] as Document | undefined) : undefined;
  return first !== undefined && "$changeStream" in first && command.$db === db;
}

/**
 * Connections to the server that belong to this test. On the simulator (one per
 * test file) that is every connection it has. A real mongod is shared by the
 * test files running in parallel, so `serverStatus().connections.current` would
 * count their clients too: there, count the connections whose handshake carried
 * `appName` (give the clients under test that appName in their URL).
 */
export async function serverConnections(backend: TestBackend, admin: MongoClient, appName: string): Promise<number> {
  if (backend.sim) return backend.sim.connections;
  const ops = await admin
    .db("admin")
    .aggregate<Document>([{ $currentOp: { allUsers: true, idleConnections: true } }])
    .toArray();
  return ops.filter((op) => op.appName === appName).length;
}

/** `url` with `appName` set, so the server can tell this client's connections and commands apart. */
export function withAppName(url: string, appName: string): string {
  // Not `new URL()`: a seed list (`mongodb://a:1,b:2/`) is not a WHATWG URL.
  const [base, query] = url.split("?", 2) as [string, string | undefined];
  const hasPath = base.slice(base.indexOf("//") + 2).includes("/");
  const params = new URLSearchParams(query ?? "");
  params.set("appName", appName);
  return `${base}${hasPath ? "" : "/"}?${params.toString()}`;
}
