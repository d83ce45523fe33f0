/**
 * Open server-side cursors. A query cursor holds the rest of its result (stored
 * documents are immutable, so holding references is a stable snapshot); a
 * change-stream cursor holds a reader that tails the oplog.
 */
import type { Document } from "bson";
import type { ChangeStreamReader } from "./change-stream";

interface CursorBase {
  id: number;
  /** "db.coll", or "db.$cmd.aggregate" for database and cluster-level aggregates. */
  ns: string;
  originatingCommand: Document;
  createdAt: Date;
  lastUsed: Date;
  /** Aborted by killCursors, so that a getMore waiting on this cursor wakes up. */
  killed: AbortController;
  /** A getMore is running on it: mongod then lists it as part of an active op, not as an idle cursor. */
  pinned: boolean;
}

export interface QueryCursor extends CursorBase {
  kind: "query";
  docs: Document[];
  at: number;
}

export interface StreamCursor extends CursorBase {
  kind: "changeStream";
  reader: ChangeStreamReader;
}

export type Cursor = QueryCursor | StreamCursor;

export class Cursors {
  private readonly open = new Map<number, Cursor>();
  // Start somewhere unpredictable so ids from a previous simulator are not reused at once.
  private nextId = 1 + Math.floor(Math.random() * 2 ** 40);

  add<C extends Cursor>(cursor: Omit<C, "id" | "createdAt" | "lastUsed" | "killed" | "pinned">): C {
    const now = new Date();
    const c = { ...cursor, id: this.nextId++, createdAt: now, lastUsed: now, killed: new AbortController(), pinned: false } as C;
    this.open.set(c.id, c);
    return c;
  }

  get(id: number): Cursor | undefined {
    return this.open.get(id);
  }

  /** Forgets a cursor (exhausted, invalidated, or killed); true if it was open. */
  remove(id: number): boolean {
    const c = this.open.get(id);
    if (!c) return false;
    this.open.delete(id);
    c.killed.abort();
    return true;
  }

  list(): Cursor[] {
    return [...this.open.values()];
  }

  clear(): void {
    for (const id of [...this.open.keys()]) this.remove(id);
  }
}
