/**
 * Resume tokens `{_data: "<uppercase hex>"}` that sort in stream order as plain strings.
 *
 * Layout (hex): 82 | t:8 | i:8 | kind:2 | seq:4 | fromInvalidate:2
 *   - `82` + big-endian clusterTime, as in real KeyString tokens (docs/mongodb.md#resume-tokens),
 *     so tools can read the time out of a token;
 *   - kind 00 = high-water mark, 80 = event: a HWM at T sorts before every event at T;
 *   - seq orders the several events one oplog entry can produce (drop → invalidate).
 */
import { Timestamp } from "bson";

export type TokenKind = "hwm" | "event";

export interface TokenData {
  ts: Timestamp;
  kind: TokenKind;
  seq: number;
  fromInvalidate: boolean;
}

const TOKEN = /^82([0-9A-F]{8})([0-9A-F]{8})(00|80)([0-9A-F]{4})(00|01)$/;

const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, "0");

export function encodeToken(d: TokenData): string {
  return "82" + hex(d.ts.t, 8) + hex(d.ts.i, 8) + (d.kind === "hwm" ? "00" : "80") + hex(d.seq, 4) + (d.fromInvalidate ? "01" : "00");
}

export function hwmToken(ts: Timestamp): string {
  return encodeToken({ ts, kind: "hwm", seq: 0, fromInvalidate: false });
}

/** Parses `{_data}`; undefined for anything this deployment could not have issued. */
export function decodeToken(token: unknown): TokenData | undefined {
  const data = (token as { _data?: unknown } | null)?._data;
  if (typeof data !== "string") return undefined;
  const m = TOKEN.exec(data);
  if (!m) return undefined;
  return {
    ts: new Timestamp({ t: parseInt(m[1]!, 16), i: parseInt(m[2]!, 16) }),
    kind: m[3] === "00" ? "hwm" : "event",
    seq: parseInt(m[4]!, 16),
    fromInvalidate: m[5] === "01",
  };
}
