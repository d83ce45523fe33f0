/**
 * BSON values → plain JSON values, for event payloads (and snapshots, which must
 * look the same so a client can merge one into the other).
 *
 * Why not EJSON relaxed: it keeps type wrappers (`{"$oid": …}`, `{"$date": …}`)
 * that every browser store would have to unwrap, and canvas code wants what
 * Mongoose-style JSON APIs return. The price is that the JSON no longer says
 * which BSON type a value had. The mapping (documented in docs/wire.md#event-data):
 *
 * | BSON                     | JSON                                                  |
 * | ------------------------ | ----------------------------------------------------- |
 * | ObjectId                 | 24-char lowercase hex string                          |
 * | Date                     | ISO-8601 string (`toISOString()`), invalid → null     |
 * | Int32, Double            | number; NaN and ±Infinity → null (as JSON.stringify)  |
 * | Long, Int64 bigint       | number when a safe integer, else its decimal string   |
 * | Decimal128               | decimal string (no precision lost)                    |
 * | Timestamp                | `"<seconds>.<increment>"` (like `clusterTime`)        |
 * | Binary subtype 4 (UUID)  | dashed UUID string                                    |
 * | other Binary, Buffer     | base64 string                                         |
 * | RegExp, BSONRegExp       | `"/pattern/flags"`                                    |
 * | Code, Symbol             | their string                                          |
 * | MinKey, MaxKey           | `"MinKey"`, `"MaxKey"`                                |
 * | DBRef                    | `{ "$ref", "$id", "$db"? }` with `$id` converted      |
 * | undefined                | key omitted in objects, null in arrays                |
 *
 * Types are recognised by their `_bsontype` tag rather than `instanceof`, so
 * values from a second copy of the bson package convert too, and this file
 * needs no import of bson at all.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

type Tagged = { _bsontype: string } & Record<string, unknown>;

function isTagged(value: object): value is Tagged {
  return typeof (value as { _bsontype?: unknown })._bsontype === "string";
}

function safeNumberOrString(n: bigint): number | string {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}

function finiteOrNull(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** `"<seconds>.<increment>"` for a bson Timestamp, or undefined if `value` is not one. */
export function timestampToString(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { t, i } = value as { t?: unknown; i?: unknown };
  if (typeof t === "number" && typeof i === "number" && Number.isInteger(t) && Number.isInteger(i) && t >= 0 && i >= 0) {
    return `${t}.${i}`;
  }
  return undefined;
}

function convertTagged(value: Tagged, depth: number): Json {
  try {
    return convertKnownTag(value, depth);
  } catch {
    // A malformed value (e.g. a UUID-subtype Binary of the wrong length) must not sink the event.
    return null;
  }
}

function convertKnownTag(value: Tagged, depth: number): Json {
  const call = (name: string, ...args: unknown[]): unknown => (value[name] as (...a: unknown[]) => unknown).apply(value, args);
  switch (value._bsontype) {
    case "ObjectId":
      return call("toHexString") as string;
    case "Int32":
    case "Double":
      return finiteOrNull(Number(call("valueOf")));
    case "Long":
      return safeNumberOrString(BigInt(call("toString") as string));
    case "Decimal128":
      return call("toString") as string;
    case "Code":
      return String(value.code);
    case "Timestamp":
      return timestampToString(value) ?? null;
    case "Binary":
      if (value.sub_type === 4) return (call("toUUID") as { toHexString(dashes: boolean): string }).toHexString(true);
      return call("toString", "base64") as string;
    case "BSONRegExp":
      return `/${String(value.pattern)}/${String(value.options)}`;
    case "BSONSymbol":
      return String(call("valueOf"));
    case "MinKey":
    case "MaxKey":
      return value._bsontype;
    case "DBRef": {
      const ref: Record<string, unknown> = { $ref: value.collection, $id: value.oid };
      if (value.db !== undefined) ref.$db = value.db;
      return toPlainJson(ref, depth + 1);
    }
    default:
      return null;
  }
}

/**
 * Converts a deserialized BSON value (as the driver returns it, promoted or not)
 * to plain JSON. Objects are rebuilt with `Object.fromEntries`, which defines own
 * properties, so a field named `__proto__` stays data and never becomes a prototype.
 */
export function toPlainJson(value: unknown, depth = 0): Json {
  // BSON documents nest at most 100 levels; anything deeper is not from the driver.
  if (depth > 200) return null;
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return finiteOrNull(value);
    case "bigint":
      return safeNumberOrString(value);
    case "undefined":
    case "function":
    case "symbol":
      return null;
  }
  if (value === null) return null;
  const obj = value as object;
  if (Array.isArray(obj)) return obj.map((item) => toPlainJson(item, depth + 1));
  if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? null : obj.toISOString();
  if (obj instanceof RegExp) return String(obj);
  if (obj instanceof Uint8Array) return base64(obj);
  if (isTagged(obj)) return convertTagged(obj, depth);
  // Built in place rather than through Object.entries/fromEntries: this runs for every document of every
  // change, and the intermediate pairs were most of its garbage.
  const out: { [key: string]: Json } = {};
  for (const key of Object.keys(obj)) {
    const item = (obj as Record<string, unknown>)[key];
    if (item === undefined) continue;
    // An own "__proto__" key stays a plain property (as Object.fromEntries defines it), never the prototype.
    if (key === "__proto__") Object.defineProperty(out, key, { value: toPlainJson(item, depth + 1), enumerable: true, writable: true, configurable: true });
    else out[key] = toPlainJson(item, depth + 1);
  }
  return out;
}

/** A document `_id` as the event's `id` string (see schemas.ts). */
export function idToString(id: unknown): string {
  if (typeof id === "string") return id;
  const plain = toPlainJson(id);
  return typeof plain === "string" ? plain : JSON.stringify(plain);
}
