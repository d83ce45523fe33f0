/**
 * The simulator's oplog: every write, in cluster-time order, bounded so that
 * "history lost" (a resume point that has fallen off the end) really happens.
 *
 * An entry keeps more than a real oplog entry needs to *replicate*: the full
 * pre- and post-image of the document. Change streams expose them only when the
 * collection had `changeStreamPreAndPostImages` enabled at write time; snapshot
 * reads use the pre-images to undo newer writes (MVCC by undo log).
 */
import { Timestamp, type Document } from "bson";

/**
 * "noop": the primary's periodic no-op write (op "n"), which no change stream shows.
 * "applyOps": a committed transaction, all its writes in one entry at one cluster time
 * (how 7.0 logs a transaction that fits in one entry; docs/simulator.md "Transactions").
 */
export type OplogOp = "insert" | "update" | "replace" | "delete" | "drop" | "rename" | "dropDatabase" | "noop" | "applyOps" | DdlOp;

/** Entries that change streams show only with `showExpandedEvents` (as create, createIndexes, dropIndexes, modify). */
export type DdlOp = "create" | "createIndexes" | "dropIndexes" | "collMod";

export interface UpdateDescription {
  updatedFields: Document;
  removedFields: string[];
  truncatedArrays: Array<{ field: string; newSize: number }>;
  /** Paths whose dotted form is ambiguous (numeric or dotted field names) → their segments. */
  disambiguatedPaths: Document;
}

export interface OplogEntry {
  ts: Timestamp;
  wall: Date;
  op: OplogOp;
  db: string;
  coll?: string;
  collectionUUID?: unknown;
  /** `_id` of the document written (CRUD ops). */
  id?: unknown;
  /** Document after the write (insert, update, replace). */
  post?: Document;
  /** Document before the write (update, replace, delete). */
  pre?: Document;
  /** Whether the collection exposed pre/post images when this entry was written. */
  images: boolean;
  updateDescription?: UpdateDescription;
  /** rename: the target namespace. */
  to?: { db: string; coll: string };
  /** drop (and rename with dropTarget): the dropped collection's documents, in natural order, for snapshot undo. */
  droppedDocs?: Document[];
  /** create, drop: of a view (no UUID; shown only by database and cluster streams with showExpandedEvents). */
  view?: boolean;
  /** The event's `operationDescription` (DDL ops and rename; shown with showExpandedEvents). */
  operationDescription?: Document;
  /** collMod: the event's `stateBeforeChange`. */
  stateBeforeChange?: Document;
  /** applyOps: the transaction's writes, in order (their index is the events' txnOpIndex). */
  ops?: TxnOp[];
  /** applyOps: the session (`{id, uid}`) and transaction number that wrote it. */
  lsid?: Document;
  txnNumber?: number;
}

/** One write of a transaction, as held in its applyOps entry. */
export type TxnOp = Pick<OplogEntry, "db" | "coll" | "id" | "pre" | "post" | "updateDescription"> & {
  op: "insert" | "update" | "replace" | "delete";
  collectionUUID?: unknown;
  images?: boolean;
};

export function compareTs(a: Timestamp, b: Timestamp): number {
  return a.t - b.t || a.i - b.i;
}

export class Oplog {
  private entries: OplogEntry[] = [];
  private head = 0; // index of the oldest retained entry
  private last: Timestamp;
  private waiters = new Set<() => void>();
  private lastAppendMs: number;
  /**
   * History ends here: the newest entry truncated away or, before any truncation, the moment
   * the oplog began (as a replica set's oplog begins at initiation). Resume points and snapshot
   * times older than this are gone.
   */
  truncatedThrough: Timestamp;

  constructor(
    readonly capacity: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(capacity >= 1)) throw new RangeError("oplog capacity must be >= 1");
    this.last = new Timestamp({ t: Math.floor(now() / 1000), i: 0 });
    this.truncatedThrough = this.last;
    this.lastAppendMs = now();
  }

  /** The cluster time of the newest write (what replies report as operationTime). */
  get lastTs(): Timestamp {
    return this.last;
  }

  /** Wall-clock ms of the newest append (or of the oplog's start). */
  get lastAppendAt(): number {
    return this.lastAppendMs;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  /** The next cluster time: wall-clock seconds, increment within the second, never backwards. */
  tick(): Timestamp {
    const secs = Math.floor(this.now() / 1000);
    this.last = secs > this.last.t ? new Timestamp({ t: secs, i: 1 }) : new Timestamp({ t: this.last.t, i: this.last.i + 1 });
    return this.last;
  }

  append(entry: OplogEntry): void {
    this.entries.push(entry);
    this.lastAppendMs = this.now();
    while (this.size > this.capacity) {
      this.truncatedThrough = this.entries[this.head]!.ts;
      this.head++;
    }
    // Compact lazily so that truncation stays O(1) amortised.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  /** Entries with ts >= `from`, oldest first. */
  *from(from: Timestamp): Generator<OplogEntry> {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareTs(this.entries[mid]!.ts, from) < 0) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; k < this.entries.length; k++) yield this.entries[k]!;
  }

  /** Entries newer than `ts`, newest first (for undo). */
  *newerThan(ts: Timestamp): Generator<OplogEntry> {
    for (let k = this.entries.length - 1; k >= this.head && compareTs(this.entries[k]!.ts, ts) > 0; k--) yield this.entries[k]!;
  }

  /** Resolves on the next append, or after `ms`, or when `signal` aborts. */
  waitForAppend(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** Wakes every waiter (used on shutdown). */
  wakeAll(): void {
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }
}
