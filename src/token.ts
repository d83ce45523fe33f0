/**
 * The stream-position types every layer shares, in one leaf module that imports
 * nothing (lint keeps it so). The glossary (docs/architecture.md):
 *
 * - *token*: a resume token's `_data` string, uppercase hex. Its plain string order
 *   is the stream order (the server encodes it as a bytewise-ordered KeyString), so
 *   tokens are compared with `<`/`>`.
 * - `ResumeToken`: the driver's object `{ _data }` around a token, as change streams
 *   hand it out and accept it back (`resumeAfter` / `startAfter`).
 * - *cluster time*: `{ t, i }`, where a snapshot was read.
 * - *cursor*: the opaque SSE id a client holds (events/cursor.ts encodes a token or a
 *   cluster time into one); never a token itself.
 * - *position*: only the watcher's own place in its stream (a `ResumeToken`).
 */

/** The resume token as the driver hands it to us and accepts it back. */
export interface ResumeToken {
  _data: string;
}

/** A cluster time `{t: seconds, i: increment}`: where a snapshot was read. */
export interface ClusterTime {
  t: number;
  i: number;
}

/** The later of two tokens (undefined counts as "before everything"). */
export function laterToken(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}

/**
 * The cluster time inside a token: `_data` is a KeyString whose first value is the
 * change's Timestamp (type byte 0x82, then 4 bytes of seconds and 4 of increment,
 * big-endian); docs/mongodb.md#resume-tokens. Undefined for anything else.
 */
export function clusterTimeOfToken(data: string | undefined): ClusterTime | undefined {
  if (data === undefined || !/^82[0-9A-Fa-f]{16}/.test(data)) return undefined;
  return { t: Number.parseInt(data.slice(2, 10), 16), i: Number.parseInt(data.slice(10, 18), 16) };
}
