/**
 * The logical session cache: every session a command names (`lsid`) is
 * recorded with its last use, and `endSessions` forgets it. `$listLocalSessions`
 * reads it (docs: reference/operator/aggregation/listLocalSessions).
 */
import { createHash } from "node:crypto";
import { Binary, type Document } from "bson";
import { valueKey } from "./store";

/** Without authentication every session belongs to the same user: the digest of no user name (SHA-256 of ""). */
const NO_AUTH_UID = new Binary(createHash("sha256").update("").digest(), 0);

interface Entry {
  id: unknown;
  lastUse: Date;
}

export class SessionCache {
  private readonly entries = new Map<string, Entry>();

  touch(lsid: unknown): void {
    const id = (lsid as Document | undefined)?.id;
    if (id === undefined) return;
    this.entries.set(valueKey(id), { id, lastUse: new Date() });
  }

  end(lsids: unknown): void {
    if (!Array.isArray(lsids)) return;
    for (const lsid of lsids) {
      const id = (lsid as Document | undefined)?.id;
      if (id !== undefined) this.entries.delete(valueKey(id));
    }
  }

  /** `$listLocalSessions` documents: `{_id: {id, uid}, lastUse}`. */
  list(): Document[] {
    return [...this.entries.values()].map((e) => ({ _id: { id: e.id, uid: NO_AUTH_UID }, lastUse: e.lastUse }));
  }
}
