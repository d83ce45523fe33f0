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
 * - *sub-position*: the place of one event among the several that one change of an
 *   embedded-entity document becomes: `<token>-<index>-<t>-<i>` (index from 0, and the
 *   change's cluster time, where a catch-up must restart to see that change again).
 *   The LAST event of a change carries the plain token, so "after the token" still
 *   means "after the whole change". Compare with `comparePositions`, never with `<`.
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

export interface SubPosition {
  readonly token: string;
  /** Which event of the change (from 0); absent for a plain token (= after the whole change). */
  readonly index?: number;
  readonly time?: ClusterTime;
}

const SUB_POSITION = /^([0-9A-F]+)-(\d{1,9})-(\d{1,10})-(\d{1,10})$/;

/** The position of event `index` of the change at `token` (not its last event: that one carries `token`). */
export function subPosition(token: string, index: number, time: ClusterTime): string {
  return `${token}-${index}-${time.t}-${time.i}`;
}

/** Splits a token or sub-position; undefined if `value` is neither (a token is not checked further here). */
export function parsePosition(value: string): SubPosition | undefined {
  if (!value.includes("-")) return /^[0-9A-F]+$/.test(value) ? { token: value } : undefined;
  const m = SUB_POSITION.exec(value);
  if (!m) return undefined;
  return { token: m[1]!, index: Number(m[2]), time: { t: Number(m[3]), i: Number(m[4]) } };
}

/**
 * Stream order of two positions (tokens or sub-positions): by token as strings (the server's
 * KeyString order), then by index, a plain token last (it stands for the whole change).
 */
export function comparePositions(a: string, b: string): number {
  if (a === b) return 0;
  const da = a.indexOf("-");
  const db = b.indexOf("-");
  const ta = da === -1 ? a : a.slice(0, da);
  const tb = db === -1 ? b : b.slice(0, db);
  if (ta !== tb) return ta < tb ? -1 : 1;
  if (da === -1) return 1;
  if (db === -1) return -1;
  return subIndex(a, da) - subIndex(b, db);
}

function subIndex(position: string, dash: number): number {
  const end = position.indexOf("-", dash + 1);
  return Number(position.slice(dash + 1, end === -1 ? undefined : end));
}

/** The later of two positions (undefined counts as "before everything"). */
export function laterToken(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return comparePositions(a, b) > 0 ? a : b;
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
