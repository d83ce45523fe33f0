/**
 * Logical sessions, multi-document transactions and retryable writes, as a 7.0
 * replica-set primary runs them (docs/simulator.md "Transactions").
 *
 * A transaction reads one snapshot (the cluster time of its first statement)
 * plus its own writes, and buffers its writes until commit. A document it writes
 * is locked until the transaction ends: a second transaction writing it, or a
 * write of the first to a document someone committed after its snapshot, gets
 * WriteConflict (first writer wins). Commit applies the buffer to the store as
 * one `applyOps` oplog entry at one cluster time; abort throws it away.
 *
 * A retryable write (lsid + txnNumber, no autocommit) remembers its reply, so
 * the driver's retry of the same txnNumber is answered, not applied again.
 */
import { createHash } from "node:crypto";
import { Binary, EJSON, type Document, type Timestamp } from "bson";
import { Codes, fail, ServerError } from "./errors";
import { freezeDeep } from "./immutable";
import type { Oplog, TxnOp, UpdateDescription } from "./oplog";
import { duplicate, getPath, valueKey, type Collection, type IndexSpec, type Store } from "./store";

/** What the command handlers read and write through: the store itself, or a transaction's view of it. */
export interface Data {
  get(db: string, coll: string): Collection | undefined;
  ensure(db: string, coll: string): Collection;
  create(db: string, name: string, options: Document): Collection;
  insert(db: string, coll: Collection, doc: Document): void;
  write(db: string, coll: Collection, before: Document, after: Document, how: { op: "update"; updateDescription: UpdateDescription } | { op: "replace" }): void;
  remove(db: string, coll: Collection, doc: Document): void;
  createIndex(db: string, coll: Collection, spec: IndexSpec): boolean;
  /** Logs the createIndexes of indexes just created (a transaction's are logged by its commit). */
  indexesCreated(db: string, coll: Collection, specs: IndexSpec[]): void;
  documentsAt(db: string, name: string, at: Timestamp | undefined): Document[];
}

/** mongod's transactionLifetimeLimitSeconds default: an older open transaction is aborted. */
export const TRANSACTION_LIFETIME_MS = 60_000;

/** Commands a transaction may run (docs: "Operations in Transactions"). */
const IN_TRANSACTION = new Set([
  "find",
  "getMore",
  "killCursors",
  "insert",
  "update",
  "delete",
  "findAndModify",
  "findandmodify",
  "aggregate",
  "distinct",
  "create",
  "createIndexes",
  "commitTransaction",
  "abortTransaction",
]);
const RETRYABLE = new Set(["insert", "update", "delete", "findAndModify", "findandmodify"]);

type TxnState = "inProgress" | "committed" | "aborted";

export interface Txn {
  number: number;
  lsid: Document;
  state: TxnState;
  /** The snapshot every read of the transaction sees (set by its first statement). */
  readTs: Timestamp;
  startedAt: number;
  /** Why it was aborted (shown in NoSuchTransaction). */
  abortReason?: string;
  /** Buffered writes, in statement order. */
  ops: TxnOp[];
  /** "db\0coll" → document key → its version in the transaction (null: deleted). */
  overlay: Map<string, Map<string, Document | null>>;
  /** Collections created in the transaction ("db\0coll" → collection, not yet in the store). */
  created: Map<string, Collection>;
  /** Indexes created in the transaction on collections that exist. */
  indexes: Array<{ db: string; coll: string; spec: IndexSpec }>;
  locks: Set<string>;
  /** Called once when the transaction ends (commit or abort): writers waiting for its locks go on. */
  onEnd: Array<() => void>;
}

interface SessionRecord {
  lsid: Document;
  /** The highest txnNumber this session has used. */
  txnNumber: number;
  txn?: Txn;
  /** Reply of the retryable write with `txnNumber`, for its retries. */
  retryReply?: Document;
  lastUse: number;
}

/** logicalSessionTimeoutMinutes (30, as the hello reply says): a session unused this long is gone. */
export const SESSION_TIMEOUT_MS = 30 * 60_000;

const nsKey = (db: string, coll: string) => `${db}\0${coll}`;
const lockKey = (db: string, coll: string, key: string) => `${db}\0${coll}\0${key}`;

/** The lsid as the oplog and change events show it: `{id, uid}`, uid = SHA-256 of the (empty) user name. */
const NO_USER_UID = new Binary(createHash("sha256").update("").digest());

export class Sessions {
  private readonly records = new Map<string, SessionRecord>();
  /** Document lock → the open transaction holding it. */
  private readonly locks = new Map<string, Txn>();

  constructor(
    private readonly store: Store,
    private readonly oplog: Oplog,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Whether the command runs in a transaction, and in which one. Throws the answer mongod
   * gives for a statement that cannot run (too old, no such transaction, not allowed).
   */
  statement(name: string, cmd: Document): Txn | undefined {
    if (cmd.autocommit === undefined) {
      if (cmd.startTransaction !== undefined) fail(Codes.InvalidOptions, "Specifying startTransaction requires autocommit: false");
      return undefined;
    }
    if (cmd.autocommit !== false) fail(Codes.InvalidOptions, "autocommit must be false");
    if (!cmd.lsid) fail(Codes.InvalidOptions, "Transaction requires a session ID (lsid)");
    const txnNumber = txnNumberOf(cmd);
    if (!IN_TRANSACTION.has(name)) fail(Codes.OperationNotSupportedInTransaction, `Cannot run '${name}' in a multi-document transaction.`);
    if (name === "aggregate" && Array.isArray(cmd.pipeline)) {
      for (const stage of cmd.pipeline as Document[]) {
        const stageName = Object.keys(stage)[0];
        if (stageName === "$changeStream" || stageName === "$out" || stageName === "$merge" || stageName === "$currentOp") {
          fail(Codes.OperationNotSupportedInTransaction, `Operation not permitted in transaction :: caused by :: ${stageName} is not allowed in a transaction`);
        }
      }
    }
    const record = this.record(cmd.lsid as Document);
    if (txnNumber < record.txnNumber) {
      fail(
        Codes.TransactionTooOld,
        `Cannot start transaction ${txnNumber} on session ${lsidText(record.lsid)} because a newer transaction ${record.txnNumber} has already started.`,
      );
    }
    if (name !== "commitTransaction" && name !== "abortTransaction" && cmd.writeConcern !== undefined) {
      fail(Codes.InvalidOptions, "Cannot set write concern after starting a transaction.");
    }
    if (cmd.startTransaction === true) {
      if (name === "commitTransaction" || name === "abortTransaction") fail(Codes.InvalidOptions, `Cannot start a transaction with ${name}`);
      if (txnNumber === record.txnNumber && record.txn) {
        fail(
          Codes.ConflictingOperationInProgress,
          `Cannot start transaction ${txnNumber} on session ${lsidText(record.lsid)} because a transaction with the same number is ${record.txn.state === "inProgress" ? "in progress" : record.txn.state}.`,
        );
      }
      const level = (cmd.readConcern as Document | undefined)?.level;
      if (level !== undefined && level !== "local" && level !== "majority" && level !== "snapshot") {
        fail(Codes.InvalidOptions, `The readConcern level must be either 'local' (default), 'majority' or 'snapshot' in order to run in a transaction`);
      }
      this.abortOpen(record, "a newer transaction started");
      record.txnNumber = txnNumber;
      record.retryReply = undefined;
      const at = (cmd.readConcern as Document | undefined)?.atClusterTime as Timestamp | undefined;
      record.txn = {
        number: txnNumber,
        lsid: record.lsid,
        state: "inProgress",
        readTs: at ?? this.oplog.lastTs,
        startedAt: this.now(),
        ops: [],
        overlay: new Map(),
        created: new Map(),
        indexes: [],
        locks: new Set(),
        onEnd: [],
      };
      return record.txn;
    }
    if (cmd.readConcern !== undefined && name !== "commitTransaction" && name !== "abortTransaction") {
      fail(Codes.InvalidOptions, "Only the first command in a transaction may specify a readConcern");
    }
    const txn = txnNumber === record.txnNumber ? record.txn : undefined;
    if (txn && txn.state === "inProgress" && this.expired(txn)) this.abort(txn, "it exceeded transactionLifetimeLimitSeconds");
    if (!txn) {
      fail(
        Codes.NoSuchTransaction,
        `Given transaction number ${txnNumber} does not match any in-progress transactions. The active transaction number is ${record.txnNumber}`,
        ["TransientTransactionError"],
      );
    }
    if (name === "commitTransaction" || name === "abortTransaction") return txn;
    if (txn.state === "committed") fail(Codes.TransactionCommitted, `Transaction with { txnNumber: ${txnNumber} } has been committed.`);
    if (txn.state === "aborted") fail(Codes.NoSuchTransaction, `Transaction with { txnNumber: ${txnNumber} } has been aborted.`, ["TransientTransactionError"]);
    return txn;
  }

  /** A statement failed before it ran (an injected error): its transaction, if open, is aborted. */
  failStatement(cmd: Document): void {
    if (!cmd.lsid || cmd.txnNumber === undefined) return;
    const record = this.records.get(sessionKey(cmd.lsid as Document));
    if (record?.txn && record.txnNumber === Number(cmd.txnNumber)) this.statementFailed(record.txn);
  }

  /** A statement of `txn` failed: mongod aborts the whole transaction. */
  statementFailed(txn: Txn): void {
    if (txn.state === "inProgress") this.abort(txn, "a statement failed");
  }

  commit(txn: Txn): Document {
    if (txn.state === "committed") return { ok: 1 }; // a retried commit answers again
    if (txn.state === "aborted") {
      fail(Codes.NoSuchTransaction, `Transaction with { txnNumber: ${txn.number} } has been aborted.`, ["TransientTransactionError"]);
    }
    this.store.applyTransaction(txn, { lsid: { id: txn.lsid.id, uid: NO_USER_UID }, txnNumber: txn.number });
    txn.state = "committed";
    this.release(txn);
    return { ok: 1 };
  }

  abortCommand(txn: Txn): Document {
    if (txn.state === "committed") fail(Codes.TransactionCommitted, `Transaction with { txnNumber: ${txn.number} } has been committed.`);
    if (txn.state === "aborted") {
      fail(Codes.NoSuchTransaction, `Transaction with { txnNumber: ${txn.number} } has been aborted.`, ["TransientTransactionError"]);
    }
    this.abort(txn, "abortTransaction");
    return { ok: 1 };
  }

  /**
   * Runs a retryable write once per (lsid, txnNumber): a retry gets the first reply.
   * Anything else (no session, no txnNumber, not a write) just runs.
   */
  async retryable(name: string, cmd: Document, run: () => Promise<Document>): Promise<Document> {
    if (!RETRYABLE.has(name) || cmd.lsid === undefined || cmd.txnNumber === undefined || cmd.autocommit !== undefined) return run();
    const txnNumber = txnNumberOf(cmd);
    const record = this.record(cmd.lsid as Document);
    if (txnNumber < record.txnNumber) {
      fail(
        Codes.TransactionTooOld,
        `Retryable write with txnNumber ${txnNumber} is prohibited on session ${lsidText(record.lsid)} because a newer retryable write with txnNumber ${record.txnNumber} has already started on this session.`,
      );
    }
    if (txnNumber === record.txnNumber) {
      if (record.retryReply) return { ...record.retryReply, retriedStmtIds: retriedIds(record.retryReply, cmd) };
      if (record.txn) fail(Codes.IncompleteTransactionHistory, `Incomplete history detected for transaction ${txnNumber} on session ${lsidText(record.lsid)}`);
    }
    this.abortOpen(record, "a newer retryable write started");
    record.txnNumber = txnNumber;
    record.txn = undefined;
    record.retryReply = undefined;
    const reply = await run();
    // Only a write that took effect is remembered; a failed one may be retried for real.
    if (reply.ok === 1 && !reply.writeErrors) record.retryReply = reply;
    return reply;
  }

  /** endSessions / killSessions: their open transactions are aborted, their records forgotten. */
  end(lsids: Document[]): void {
    for (const lsid of lsids) {
      const key = sessionKey(lsid);
      const record = this.records.get(key);
      if (!record) continue;
      this.abortOpen(record, "the session was ended");
      this.records.delete(key);
    }
  }

  /** killAllSessions: every open transaction is aborted. */
  endAll(): void {
    this.end([...this.records.values()].map((r) => r.lsid));
  }

  /** Open transactions (for tests of the simulator and $currentOp-like views). */
  openTransactions(): Txn[] {
    return [...this.records.values()].flatMap((r) => (r.txn?.state === "inProgress" ? [r.txn] : []));
  }

  /** The view a statement of `txn` reads and writes through. */
  view(txn: Txn): Data {
    return new TxnView(txn, this.store, this.oplog, (key) => this.lock(txn, key));
  }

  private lock(txn: Txn, key: string): void {
    const holder = this.locks.get(key);
    if (holder && holder !== txn) {
      if (holder.state === "inProgress" && this.expired(holder)) this.abort(holder, "it exceeded transactionLifetimeLimitSeconds");
      else
        throw new ServerError(
          Codes.WriteConflict,
          "Caused by :: Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction.",
          ["TransientTransactionError"],
        );
    }
    this.locks.set(key, txn);
    txn.locks.add(key);
  }

  /**
   * For a write outside any transaction: resolves once no open transaction holds any of these
   * documents' locks (the holder ended, or it outlived transactionLifetimeLimitSeconds and was
   * aborted); undefined if none is held now.
   */
  blocking(db: string, coll: string, ids: unknown[]): Promise<void> | undefined {
    for (const id of ids) {
      const holder = this.lockedBy(db, coll, id);
      if (!holder) continue;
      return new Promise<void>((resolve) => {
        const timer = setTimeout(
          () => {
            if (holder.state === "inProgress") this.abort(holder, "it exceeded transactionLifetimeLimitSeconds");
            resolve();
          },
          Math.max(0, TRANSACTION_LIFETIME_MS - (this.now() - holder.startedAt)),
        );
        timer.unref();
        holder.onEnd.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return undefined;
  }

  /** Whether a document is locked by an open transaction other than `txn` (non-transactional writers wait on it). */
  lockedBy(db: string, coll: string, id: unknown): Txn | undefined {
    const holder = this.locks.get(lockKey(db, coll, valueKey(id)));
    if (!holder || holder.state !== "inProgress") return undefined;
    if (this.expired(holder)) {
      this.abort(holder, "it exceeded transactionLifetimeLimitSeconds");
      return undefined;
    }
    return holder;
  }

  private expired(txn: Txn): boolean {
    return this.now() - txn.startedAt > TRANSACTION_LIFETIME_MS;
  }

  private abort(txn: Txn, reason: string): void {
    txn.state = "aborted";
    txn.abortReason = reason;
    txn.ops = [];
    txn.overlay.clear();
    txn.created.clear();
    txn.indexes = [];
    this.release(txn);
  }

  private abortOpen(record: SessionRecord, reason: string): void {
    if (record.txn?.state === "inProgress") this.abort(record.txn, reason);
  }

  private release(txn: Txn): void {
    for (const key of txn.locks) if (this.locks.get(key) === txn) this.locks.delete(key);
    txn.locks.clear();
    for (const wake of txn.onEnd.splice(0)) wake();
  }

  private record(lsid: Document): SessionRecord {
    const key = sessionKey(lsid);
    let record = this.records.get(key);
    if (!record) {
      this.expireIdle();
      this.records.set(key, (record = { lsid, txnNumber: -1, lastUse: this.now() }));
    }
    record.lastUse = this.now();
    return record;
  }

  /**
   * Sessions a client never ended (it crashed, or dropped a session after a network error)
   * expire as on mongod, with their open transactions: checked whenever a new session appears,
   * so the table stays bounded by the sessions in use without a timer.
   */
  private expireIdle(): void {
    const cutoff = this.now() - SESSION_TIMEOUT_MS;
    for (const [key, record] of this.records) {
      if (record.lastUse >= cutoff) continue;
      this.abortOpen(record, "the session expired");
      this.records.delete(key);
    }
  }
}

function txnNumberOf(cmd: Document): number {
  const n = Number(cmd.txnNumber);
  if (cmd.txnNumber === undefined || !Number.isInteger(n) || n < 0) fail(Codes.InvalidOptions, "a transaction needs a non-negative txnNumber");
  return n;
}

function sessionKey(lsid: Document): string {
  return EJSON.stringify({ id: lsid.id }, { relaxed: false });
}

function lsidText(lsid: Document): string {
  const id = lsid.id as { toHexString?: () => string } | undefined;
  return id?.toHexString ? id.toHexString() : EJSON.stringify(lsid);
}

/** A retried write reports which of its statements had run already (all of them, here). */
function retriedIds(reply: Document, cmd: Document): number[] {
  const n = ((cmd.documents ?? cmd.updates ?? cmd.deletes ?? [undefined]) as unknown[]).length;
  void reply;
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * A transaction's view: the store as of the snapshot, with the transaction's own
 * writes on top. Writes go to the buffer (and take the document's lock).
 */
class TxnView implements Data {
  constructor(
    private readonly txn: Txn,
    private readonly store: Store,
    private readonly oplog: Oplog,
    private readonly lock: (key: string) => void,
  ) {}

  get(db: string, coll: string): Collection | undefined {
    const base = this.txn.created.get(nsKey(db, coll)) ?? this.store.get(db, coll);
    const overlay = this.txn.overlay.get(nsKey(db, coll));
    if (!base) return undefined;
    const docs = new Map(this.store.documentsAt(db, coll, this.txn.readTs).map((d) => [valueKey(d._id), d]));
    for (const [key, doc] of overlay ?? []) {
      if (doc) docs.set(key, doc);
      else docs.delete(key);
    }
    const pending = this.txn.indexes.filter((i) => i.db === db && i.coll === coll).map((i) => i.spec);
    return { ...base, docs, indexes: [...base.indexes, ...pending], uniques: new Map() };
  }

  ensure(db: string, coll: string): Collection {
    return this.get(db, coll) ?? this.create(db, coll, {});
  }

  create(db: string, name: string, options: Document): Collection {
    if (this.get(db, name)) fail(Codes.NamespaceExists, `Collection ${db}.${name} already exists.`);
    const coll = this.store.detachedCollection(db, name, options);
    this.txn.created.set(nsKey(db, name), coll);
    return this.get(db, name)!;
  }

  insert(db: string, coll: Collection, doc: Document): void {
    const key = valueKey(doc._id);
    if (coll.docs.has(key)) duplicate(db, coll, "_id_", { _id: doc._id });
    this.checkUniques(db, coll, doc, key);
    this.claim(db, coll.name, key);
    this.put(db, coll, key, { op: "insert", db, coll: coll.name, id: doc._id, post: doc });
  }

  write(
    db: string,
    coll: Collection,
    before: Document,
    after: Document,
    how: { op: "update"; updateDescription: UpdateDescription } | { op: "replace" },
  ): void {
    const key = valueKey(before._id);
    this.checkUniques(db, coll, after, key);
    this.claim(db, coll.name, key);
    this.put(db, coll, key, {
      op: how.op,
      db,
      coll: coll.name,
      id: after._id,
      pre: before,
      post: after,
      updateDescription: how.op === "update" ? how.updateDescription : undefined,
    });
  }

  remove(db: string, coll: Collection, doc: Document): void {
    const key = valueKey(doc._id);
    this.claim(db, coll.name, key);
    this.put(db, coll, key, { op: "delete", db, coll: coll.name, id: doc._id, pre: doc });
  }

  createIndex(db: string, coll: Collection, spec: IndexSpec): boolean {
    const created = this.txn.created.has(nsKey(db, coll.name));
    if (!created && coll.docs.size > 0) {
      fail(Codes.OperationNotSupportedInTransaction, `Cannot create new indexes on existing collection ${db}.${coll.name} in a multi-document transaction.`);
    }
    if (coll.indexes.some((i) => i.name === spec.name)) return false;
    if (created) this.txn.created.get(nsKey(db, coll.name))!.indexes.push(spec);
    else this.txn.indexes.push({ db, coll: coll.name, spec });
    coll.indexes.push(spec); // the caller's copy, for its numIndexesAfter
    return true;
  }

  indexesCreated(): void {}

  documentsAt(db: string, name: string): Document[] {
    return [...(this.get(db, name)?.docs.values() ?? [])];
  }

  /**
   * Takes the document's lock. A version committed after the snapshot means another writer
   * got there first: WriteConflict, as WiredTiger reports it to a transaction.
   */
  private claim(db: string, coll: string, key: string): void {
    for (const e of this.oplog.newerThan(this.txn.readTs)) {
      for (const op of e.op === "applyOps" ? e.ops! : [e]) {
        if (op.db === db && op.coll === coll && valueKey(op.id) === key) {
          throw new ServerError(
            Codes.WriteConflict,
            "Caused by :: Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction.",
            ["TransientTransactionError"],
          );
        }
      }
    }
    this.lock(lockKey(db, coll, key));
  }

  private put(db: string, coll: Collection, key: string, op: TxnOp): void {
    const images = coll.options.changeStreamPreAndPostImages?.enabled === true;
    // Frozen as the store freezes what it keeps: readers of the transaction share these objects.
    freezeDeep(op.post);
    freezeDeep(op.updateDescription);
    this.txn.ops.push({ ...op, collectionUUID: coll.uuid, images });
    let overlay = this.txn.overlay.get(nsKey(db, coll.name));
    if (!overlay) this.txn.overlay.set(nsKey(db, coll.name), (overlay = new Map()));
    overlay.set(key, op.op === "delete" ? null : op.post!);
    // The view's own copy: later statements of the same command see this write.
    if (op.op === "delete") coll.docs.delete(key);
    else coll.docs.set(key, op.post!);
  }

  private checkUniques(db: string, coll: Collection, doc: Document, key: string): void {
    for (const spec of coll.indexes) {
      if (!spec.unique) continue;
      const value = valueKey(Object.keys(spec.key).map((p) => getPath(doc, p) ?? null));
      for (const [other, d] of coll.docs) {
        if (other !== key && valueKey(Object.keys(spec.key).map((p) => getPath(d, p) ?? null)) === value) {
          duplicate(db, coll, spec.name, Object.fromEntries(Object.keys(spec.key).map((p) => [p, getPath(doc, p) ?? null])));
        }
      }
    }
  }
}
