/**
 * The SSE cursor (the `id:` of every frame, sent back as `Last-Event-ID`) ↔ the
 * change-stream resume token.
 *
 * Format: `<version>.<scope>.<hex>`, today `1.<scope>.<_data>`, e.g.
 * `1.k3x9a0q1z7.8265A1B2C3000000012B022C0100296E5A1004…`.
 * - `version` lets a later release change the encoding and still recognise old
 *   cursors; an unknown version is "malformed" (the client gets RESET).
 * - `scope` is a short tag of the deployment + database, chosen by the caller
 *   (see `cursorScope`): a cursor from another deployment is "foreign", never
 *   fed to this deployment's change stream, where it would fail or, worse, resume
 *   from an unrelated position.
 * - `hex` is the resume token's `_data`, uppercase hex as MongoDB issues it, or,
 *   for an event that is not the last of the several one change became (entities
 *   embedded in one document), its sub-position `<_data>-<index>-<t>-<i>`: the
 *   event's index in the change and the change's cluster time (src/token.ts).
 *
 * The cursor is opaque to clients but not secret: it only reveals the oplog
 * position. It is untrusted input, so decoding is strict and bounded.
 */
import { FlowsyncError } from "../errors";
import { parsePosition, type ClusterTime, type ResumeToken } from "../token";

export const CURSOR_VERSION = "1";
/**
 * Longest cursor we accept. A resume token embeds the document key, so a
 * document whose string `_id` is longer than ~150 bytes yields a longer cursor;
 * resuming with it gives RESET ("cursor-malformed") instead of a resume.
 */
export const CURSOR_MAX_LENGTH = 512;

const SCOPE_PATTERN = /^[a-z0-9]{1,32}$/;
const HEX_PATTERN = /^(?:[0-9A-F]{2})+$/;

/**
 * `ok`: the change's token; `position`: the cursor's exact place (the token, or a sub-position
 * inside that change, then `within` gives the event's index and the change's cluster time).
 */
export type DecodedCursor =
  { ok: ResumeToken; position: string; within?: { index: number; time: ClusterTime } } | { time: ClusterTime } | { error: "malformed" | "foreign" };

/**
 * A time cursor `1.<scope>.T<seconds>_<increment>` names "everything after cluster
 * time T": the cursor of a snapshot read at T (a resume token cannot be made up
 * for an arbitrary time). `T` and `_` never occur in token hex, so the two kinds
 * cannot be confused.
 */
const TIME_PATTERN = /^T(\d{1,10})_(\d{1,10})$/;
const UINT32_MAX = 0xffffffff;

export function isValidScope(scope: string): boolean {
  return SCOPE_PATTERN.test(scope);
}

/** True if `value` is the `_data` of a resume token as this module encodes it. */
export function isTokenHex(value: unknown): value is string {
  return typeof value === "string" && HEX_PATTERN.test(value);
}

/**
 * A stable scope tag from the identity of a deployment and database, e.g.
 * `cursorScope(replicaSetName, dbName)`. Two FNV-1a 32-bit hashes with different
 * offsets → up to 14 base-36 chars; collisions only matter between deployments
 * a client could plausibly move between, so this is plenty. Never pass secrets:
 * the tag is visible to clients (it is a hash, but still).
 */
export function cursorScope(...parts: string[]): string {
  const text = parts.join("\u0000");
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x01000193) >>> 0;
  }
  return a.toString(36) + b.toString(36);
}

/**
 * Encodes a token we received from the change stream. Throws on a token that is
 * not uppercase hex or a bad scope: both are bugs on our side, not client input.
 */
export function encodeCursor(token: ResumeToken | string, scope: string): string {
  const hex = typeof token === "string" ? token : token._data;
  const sub = parsePosition(hex);
  if (!isTokenHex(sub?.token) || (sub.time !== undefined && !validTime(sub.time.t, sub.time.i))) {
    throw new FlowsyncError("E_INTERNAL", `resume token _data is not uppercase hex: ${String(hex).slice(0, 40)}`);
  }
  if (!isValidScope(scope)) throw new FlowsyncError("E_INTERNAL", `cursor scope must match ${SCOPE_PATTERN}: ${scope}`);
  return `${CURSOR_VERSION}.${scope}.${hex}`;
}

/** Encodes the cursor of a snapshot read at `time` (see TIME_PATTERN). */
export function encodeTimeCursor(time: ClusterTime, scope: string): string {
  if (!isValidScope(scope)) throw new FlowsyncError("E_INTERNAL", `cursor scope must match ${SCOPE_PATTERN}: ${scope}`);
  return `${CURSOR_VERSION}.${scope}.T${time.t}_${time.i}`;
}

/**
 * Decodes a cursor sent by a client. `malformed`: not a string, too long, wrong
 * charset, unknown version. `foreign`: well-formed, but issued for another scope.
 */
export function decodeCursor(cursor: unknown, expectedScope: string): DecodedCursor {
  if (typeof cursor !== "string" || cursor.length === 0 || cursor.length > CURSOR_MAX_LENGTH) {
    return { error: "malformed" };
  }
  const parts = cursor.split(".");
  if (parts.length !== 3) return { error: "malformed" };
  const [version, scope, hex] = parts as [string, string, string];
  if (version !== CURSOR_VERSION || !isValidScope(scope)) return { error: "malformed" };
  const time = TIME_PATTERN.exec(hex);
  if (time) {
    const t = Number(time[1]);
    const i = Number(time[2]);
    if (!validTime(t, i)) return { error: "malformed" };
    return scope !== expectedScope ? { error: "foreign" } : { time: { t, i } };
  }
  const sub = parsePosition(hex);
  if (!sub || !isTokenHex(sub.token) || (sub.time !== undefined && !validTime(sub.time.t, sub.time.i))) return { error: "malformed" };
  if (scope !== expectedScope) return { error: "foreign" };
  const ok = { _data: sub.token };
  return sub.index === undefined ? { ok, position: hex } : { ok, position: hex, within: { index: sub.index, time: sub.time! } };
}

function validTime(t: number, i: number): boolean {
  return t <= UINT32_MAX && i <= UINT32_MAX;
}
