/**
 * MongoDB wire framing: just the three opcodes the Node driver v7 speaks to a
 * server that does not advertise compression (docs/mongodb.md#handshake).
 *
 *   OP_QUERY (2004)  the very first `ismaster` on a connection → answered with OP_REPLY (1)
 *   OP_MSG   (2013)  everything after the handshake → answered with OP_MSG
 */
import { deserialize, serialize, type Document } from "bson";

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_COMPRESSED = 2012;
export const OP_MSG = 2013;

const HEADER = 16;
const CHECKSUM_PRESENT = 1 << 0;
const MORE_TO_COME = 1 << 1;
// Bits 0-15 are "required": a receiver must reject one it does not know (OP_MSG spec).
const KNOWN_REQUIRED_BITS = CHECKSUM_PRESENT | MORE_TO_COME;

export interface Request {
  requestId: number;
  opCode: number;
  /** The command body, with kind-1 document sequences merged in under their identifiers. */
  body: Document;
  /** OP_MSG moreToCome on a request means "w:0, send no reply". */
  moreToCome: boolean;
  /** OP_QUERY's collection name (e.g. "admin.$cmd"); OP_MSG carries `$db` in the body. */
  fullCollectionName?: string;
}

export class WireError extends Error {
  override name = "WireError";
}

/** Decoding options: keep ints/doubles as JS numbers; BSON-only types stay objects. */
const DECODE = { promoteLongs: true, promoteValues: true, promoteBuffers: false } as const;

/** Length of the first complete message in `buf`, or 0 if more bytes are needed. */
export function messageLength(buf: Buffer): number {
  if (buf.length < 4) return 0;
  const len = buf.readInt32LE(0);
  if (len < HEADER || len > 48_000_000) throw new WireError(`bad message length ${len}`);
  return buf.length >= len ? len : 0;
}

export function parseMessage(msg: Buffer): Request {
  const requestId = msg.readInt32LE(4);
  const opCode = msg.readInt32LE(12);
  if (opCode === OP_MSG) return parseOpMsg(msg, requestId);
  if (opCode === OP_QUERY) return parseOpQuery(msg, requestId);
  throw new WireError(`unsupported opcode ${opCode}`);
}

function parseOpMsg(msg: Buffer, requestId: number): Request {
  const flags = msg.readUInt32LE(HEADER);
  if (flags & 0xffff & ~KNOWN_REQUIRED_BITS) throw new WireError(`unknown required OP_MSG flag bits ${flags}`);
  const end = flags & CHECKSUM_PRESENT ? msg.length - 4 : msg.length;
  let at = HEADER + 4;
  let body: Document | undefined;
  const sequences: Array<[string, Document[]]> = [];
  while (at < end) {
    const kind = msg[at++];
    if (kind === 0) {
      const size = msg.readInt32LE(at);
      body = deserialize(msg.subarray(at, at + size), DECODE);
      at += size;
    } else if (kind === 1) {
      const size = msg.readInt32LE(at);
      const sectionEnd = at + size;
      const nameEnd = msg.indexOf(0, at + 4);
      const identifier = msg.toString("utf8", at + 4, nameEnd);
      const docs: Document[] = [];
      for (let p = nameEnd + 1; p < sectionEnd;) {
        const docSize = msg.readInt32LE(p);
        docs.push(deserialize(msg.subarray(p, p + docSize), DECODE));
        p += docSize;
      }
      sequences.push([identifier, docs]);
      at = sectionEnd;
    } else {
      throw new WireError(`unknown OP_MSG section kind ${kind}`);
    }
  }
  if (!body) throw new WireError("OP_MSG without a kind-0 body");
  for (const [identifier, docs] of sequences) body[identifier] = docs;
  return { requestId, opCode: OP_MSG, body, moreToCome: (flags & MORE_TO_COME) !== 0 };
}

function parseOpQuery(msg: Buffer, requestId: number): Request {
  let at = HEADER + 4; // flags: ignored (docs/mongodb.md#the-first-message-op_query-ismaster)
  const nameEnd = msg.indexOf(0, at);
  const fullCollectionName = msg.toString("utf8", at, nameEnd);
  at = nameEnd + 1 + 8; // numberToSkip, numberToReturn
  const size = msg.readInt32LE(at);
  let body = deserialize(msg.subarray(at, at + size), DECODE);
  // Legacy wrapping: {$query: {...}, $readPreference: ...}
  if (body.$query && typeof body.$query === "object") body = body.$query;
  return { requestId, opCode: OP_QUERY, body, moreToCome: false, fullCollectionName };
}

function header(length: number, responseTo: number, opCode: number): Buffer {
  const h = Buffer.alloc(HEADER);
  h.writeInt32LE(length, 0);
  // requestID of a reply: the driver matches replies by responseTo only, so 0 serves.
  h.writeInt32LE(responseTo, 8);
  h.writeInt32LE(opCode, 12);
  return h;
}

/** One kind-0 section: the driver rejects kind-1 sections in replies. */
export function encodeOpMsg(responseTo: number, doc: Document): Buffer {
  const body = serialize(doc, { ignoreUndefined: true });
  const length = HEADER + 4 + 1 + body.length;
  const prefix = Buffer.alloc(5); // flagBits 0, section kind 0
  return Buffer.concat([header(length, responseTo, OP_MSG), prefix, body], length);
}

export function encodeOpReply(responseTo: number, doc: Document): Buffer {
  const body = serialize(doc, { ignoreUndefined: true });
  const fixed = Buffer.alloc(20); // responseFlags, cursorID (int64 0), startingFrom
  fixed.writeInt32LE(1, 16); // numberReturned
  const length = HEADER + fixed.length + body.length;
  return Buffer.concat([header(length, responseTo, OP_REPLY), fixed, body], length);
}
