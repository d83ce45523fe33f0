/**
 * A temporary change stream that replays what one reconnecting subscriber
 * missed: from its cursor up to (and including) `until`, the live watcher's
 * position when the subscriber registered for live events. Everything after
 * `until` reaches the subscriber live, so the two meet with no gap and no overlap.
 *
 * Few and short-lived by design (the caller limits how many run at once); it
 * closes its cursor when done, on error, and when `signal` aborts.
 */
import type { ChangeStreamDocument, Db, Document } from "mongodb";
import type { ResumeToken } from "../events/cursor";

export interface CatchUpOptions {
  db: Db;
  pipeline: readonly Document[];
  from: ResumeToken;
  /** Last position to replay (resume token `_data`); tokens sort in stream order. */
  until: string;
  signal: AbortSignal;
  maxAwaitTimeMS?: number;
}

export async function* catchUpChanges(o: CatchUpOptions): AsyncGenerator<ChangeStreamDocument> {
  const stream = o.db.watch([...o.pipeline], {
    resumeAfter: o.from,
    fullDocument: "updateLookup",
    fullDocumentBeforeChange: "whenAvailable",
    maxAwaitTimeMS: o.maxAwaitTimeMS ?? 200,
  });
  const stop = () => void stream.close().catch(() => {});
  o.signal.addEventListener("abort", stop, { once: true });
  try {
    while (!o.signal.aborted) {
      const change = await stream.tryNext();
      if (change) {
        const token = (change._id as ResumeToken)._data;
        if (token > o.until) return;
        yield change;
        if (token === o.until) return;
      } else {
        const position = (stream.resumeToken as ResumeToken | undefined)?._data;
        if (position !== undefined && position >= o.until) return;
      }
    }
  } finally {
    o.signal.removeEventListener("abort", stop);
    await stream.close().catch(() => {});
  }
}
