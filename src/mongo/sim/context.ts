/** What a command handler may reach: the simulated server's state plus its own connection. */
import { deserialize, serialize, type Document, type Timestamp } from "bson";
import type { Cursors } from "./cursors";
import type { FailPoints } from "./fail-points";
import type { Oplog } from "./oplog";
import type { SessionCache } from "./session-cache";
import type { Store } from "./store";
import type { Data, Sessions, Txn } from "./transactions";
import { Codes, fail } from "./errors";

export const SERVER_VERSION = [7, 0, 14] as const;
/** Wire version of MongoDB 7.0 (wireversion-featurelist). */
export const MAX_WIRE_VERSION = 21;

export interface ServerState {
  store: Store;
  oplog: Oplog;
  /** Logical sessions: transactions and retryable-write records. */
  sessions: Sessions;
  cursors: Cursors;
  failPoints: FailPoints;
  /** "host:port" as the driver must see it in `hosts`. */
  me: string;
  /** Replica set name; undefined for a standalone (no change streams). */
  setName: string | undefined;
  startedAt: Date;
  /** Open client connections (for $currentOp). */
  connections: Set<Connection>;
  /** Source of $currentOp `opid`s. */
  nextOpId: number;
  /** Sessions seen in commands' `lsid` ($listLocalSessions). */
  sessionCache: SessionCache;
}

export interface Connection {
  id: number;
  /** "ip:port" of the client end, as $currentOp reports it. */
  client: string;
  appName?: string;
  /** The handshake's `client` document. */
  clientMetadata?: Document;
  /** The command running on it, if any: $currentOp lists it as an active op. */
  op?: RunningOp;
  /** Aborted when the socket closes, so waits on its behalf stop. */
  closed: AbortSignal;
}

export interface RunningOp {
  opid: number;
  /** The command as received (with `$db`, `lsid`, ...), as mongod's $currentOp shows it. */
  command: Document;
  db: string;
  startedAt: number;
}

export interface Ctx {
  server: ServerState;
  conn: Connection;
  /** The transaction the command runs in, if any. */
  txn?: Txn;
  /**
   * What the command reads and writes: the store, or the transaction's view of it (its
   * snapshot plus its own writes). Handlers go through this, never `server.store`, for data.
   */
  data: Data;
}

export type Handler = (cmd: Document, db: string, ctx: Ctx) => Document | Promise<Document>;

/** Deep copy that keeps BSON types (Long, Decimal128, ...) intact. */
export function clone<T extends Document>(doc: T): T {
  return deserialize(serialize(doc), { promoteLongs: true, promoteValues: true }) as T;
}

/**
 * The point in time a read sees: undefined for "latest", or a cluster time for
 * `readConcern: {level: "snapshot"}` (docs/mongodb.md#snapshot-reads).
 */
export function readTime(cmd: Document, ctx: Ctx): Timestamp | undefined {
  const rc = cmd.readConcern as Document | undefined;
  if (!rc || rc.level !== "snapshot") return undefined;
  if (rc.atClusterTime && rc.afterClusterTime) fail(Codes.InvalidOptions, "readConcern: atClusterTime and afterClusterTime are mutually exclusive");
  return (rc.atClusterTime as Timestamp | undefined) ?? ctx.server.oplog.lastTs;
}

/** Collection name argument of a command, validated. */
export function collectionName(cmd: Document, name: string): string {
  const coll = cmd[name];
  if (typeof coll !== "string" || coll.length === 0) fail(Codes.InvalidNamespace, `collection name has invalid type ${typeof coll}`);
  return coll;
}

export function notImplemented(what: string): never {
  fail(Codes.NotImplemented, `${what} is not implemented by the flowsync MongoDB simulator (it covers what flowsync needs; use a real mongod for the rest)`);
}

/** Fields the driver adds to every command; they are not options of the command itself. */
const GENERIC_FIELDS = new Set([
  "lsid",
  "txnNumber",
  "writeConcern",
  "readConcern",
  "comment",
  "maxTimeMS",
  "apiVersion",
  "apiStrict",
  "apiDeprecationErrors",
  "autocommit",
  "startTransaction",
]);

/** The command's own options: everything but its name, `$`-fields and generic fields. */
export function commandOptions(cmd: Document): Document {
  const [, ...keys] = Object.keys(cmd);
  return Object.fromEntries(keys.filter((k) => !k.startsWith("$") && !GENERIC_FIELDS.has(k)).map((k) => [k, cmd[k]]));
}
