/**
 * A temporary change stream that replays what one reconnecting subscriber
 * missed: from its cursor up to (and including) `lastToken`, the live watcher's
 * position when the subscriber registered for live events. Everything after
 * `lastToken` reaches the subscriber live, so the two meet with no gap and no overlap.
 *
 * Few and short-lived by design (the caller limits how many run at once); it
 * closes its cursor when done, on error, and when `signal` aborts.
 */
import { Timestamp, type ChangeStreamDocument, type Db, type Document } from "mongodb";
import type { ClusterTime, ResumeToken } from "../token";
import { FlowsyncError, squashError } from "../errors";
import { ClosableChangeStream } from "./closable-stream";

/**
 * Where a catch-up starts: after a resume token, after a cluster time (a snapshot's), or
 * `within` a change (the cursor of one of its several events): from that change itself, found
 * by its cluster time (inclusive), earlier changes at the same time dropped by token order.
 */
export type CatchUpStart = { token: ResumeToken } | { time: ClusterTime } | { within: { token: ResumeToken; time: ClusterTime } };

export interface CatchUpOptions {
  db: Db;
  pipeline: readonly Document[];
  from: CatchUpStart;
  /** The last token to replay (tokens sort in stream order). */
  lastToken: string;
  signal: AbortSignal;
  maxAwaitTimeMS?: number;
}

/**
 * Most changes in one yielded batch: a driver batch can hold thousands, and each taken out is a
 * full JS object, so the batches stay small enough for a slow subscriber's socket to bound.
 */
const MAX_BATCH = 500;

/**
 * Changes per getMore: small enough that the server reads the next batch while we map and write
 * this one (see `ahead`), large enough that round trips stay few.
 */
const GETMORE_BATCH = 1000;

/**
 * Yields the changes in batches: those that arrived together, as the driver already holds them
 * (taking them costs no round trip), so that the caller turns a batch into one write, not one per
 * change. Returns the token the stream ended at, if it got one.
 */
export async function* catchUpChanges(o: CatchUpOptions): AsyncGenerator<ChangeStreamDocument[], string | undefined> {
  const from = o.from;
  const start =
    "token" in from
      ? { resumeAfter: from.token }
      : "within" in from
        ? { startAtOperationTime: new Timestamp({ t: from.within.time.t, i: from.within.time.i }) }
        : // startAtOperationTime is inclusive and a snapshot at T holds every write at T: start just after it.
          { startAtOperationTime: new Timestamp({ t: from.time.t, i: from.time.i + 1 }) };
  const firstToken = "within" in from ? from.within.token._data : undefined;
  // Closable while still opening: the client may leave before the first batch arrives.
  const stream = new ClosableChangeStream(
    o.db.watch([...o.pipeline], {
      ...start,
      fullDocument: "updateLookup",
      fullDocumentBeforeChange: "whenAvailable",
      maxAwaitTimeMS: o.maxAwaitTimeMS ?? 200,
      batchSize: GETMORE_BATCH,
    }),
  );
  const stop = () => void stream.close();
  o.signal.addEventListener("abort", stop, { once: true });
  let endToken: string | undefined;
  /**
   * The next tryNext, sent before the batch taken is yielded when the driver holds no more: its getMore
   * then runs on the server while the caller maps and writes this batch. The same calls in the same order,
   * one at a time, only earlier; a failure surfaces when it is awaited (and is ignored if nobody does).
   */
  let ahead: Promise<ChangeStreamDocument | null> | undefined;
  try {
    while (!o.signal.aborted) {
      let change = await (ahead ?? stream.tryNext());
      ahead = undefined;
      if (change) {
        const batch: ChangeStreamDocument[] = [];
        for (;;) {
          const token = (change._id as ResumeToken)._data;
          if (firstToken === undefined || token >= firstToken) {
            // resumeAfter fails when its token is not in the history (280); a start at a cluster time does not, so
            // check it here: the first change at or after the cursor's must be that very change.
            if (firstToken !== undefined && endToken === undefined && token !== firstToken) {
              throw new FlowsyncError(
                "E_CURSOR_CHANGE_MISSING",
                `catch-up: the change of cursor token ${firstToken} is not in the history (found ${token} first)`,
              );
            }
            if (token > o.lastToken) {
              if (batch.length > 0) yield batch;
              return endToken;
            }
            endToken = token;
            batch.push(change);
            if (token === o.lastToken) {
              yield batch;
              return endToken;
            }
          }
          if (batch.length >= MAX_BATCH || o.signal.aborted) break;
          if (stream.bufferedCount() === 0) {
            ahead = stream.tryNext();
            ahead.catch(squashError);
            break;
          }
          const buffered = await stream.tryNext();
          if (!buffered) break;
          change = buffered;
        }
        if (batch.length > 0) yield batch;
      } else {
        endToken = stream.resumeToken?._data ?? endToken;
        if (endToken !== undefined && endToken >= o.lastToken) return endToken;
        // The server ended the cursor short of `until` (e.g. right after an invalidate the caller did not stop at).
        if (stream.closed && !o.signal.aborted)
          throw new FlowsyncError("E_CHANGE_STREAM_ENDED", `catch-up stream ended by the server at ${endToken ?? "its start"}, before ${o.lastToken}`);
      }
    }
    return endToken;
  } finally {
    o.signal.removeEventListener("abort", stop);
    await stream.close();
  }
}
