// How the runner sees BSON values that came back through the Node driver.
//
// The driver promotes int32, int64 (when it fits) and double to a plain JS
// number, so "int" vs "long" vs "double" can't be told apart after decoding.
// The checks below are therefore lenient in the same way the MongoDB Node
// driver's own unified runner is; that is the best a JS runner can observe.
// BSON wrapper classes are recognised by their `_bsontype` tag rather than by
// `instanceof`, so two copies of the bson package can't confuse the runner.

export function bsonTag(value: unknown): string | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const tag = (value as { _bsontype?: unknown })._bsontype;
  return typeof tag === "string" ? tag : undefined;
}

/** A plain document: an object that is not an array, not a BSON scalar
 *  (ObjectId, Long, ...) and not a Date/RegExp/Buffer. The driver encodes some
 *  command fields (e.g. `sort`) as a Map, which also counts as a document. */
export function isDocument(value: unknown): value is Record<string, unknown> | Map<string, unknown> {
  if (value === null || typeof value !== "object") return false;
  if (value instanceof Map) return true;
  if (Array.isArray(value) || value instanceof Date || value instanceof RegExp) return false;
  if (value instanceof Uint8Array) return false;
  return bsonTag(value) === undefined;
}

/** Own entries of a document, skipping keys whose value is `undefined` (the
 *  driver never sends those, so they are not "present"). */
export function documentEntries(doc: Record<string, unknown> | Map<string, unknown>): [string, unknown][] {
  const entries = doc instanceof Map ? [...doc.entries()].map(([k, v]) => [String(k), v] as [string, unknown]) : Object.entries(doc);
  return entries.filter(([, v]) => v !== undefined);
}

export function documentGet(doc: Record<string, unknown> | Map<string, unknown>, key: string): { present: boolean; value: unknown } {
  if (doc instanceof Map) {
    // Map keys may be numbers (the driver uses numeric keys for some result maps).
    for (const [k, v] of doc) if (String(k) === key && v !== undefined) return { present: true, value: v };
    return { present: false, value: undefined };
  }
  const present = Object.prototype.hasOwnProperty.call(doc, key) && doc[key] !== undefined;
  return { present, value: present ? doc[key] : undefined };
}

/** Numeric value for the "flexible numeric comparison" rule: int32, int64 and
 *  double compare by value. Decimal128 is excluded on purpose (spec rule). */
export function numericValue(value: unknown): number | bigint | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return value;
  const tag = bsonTag(value);
  if (tag === "Int32" || tag === "Double") return Number((value as { value: number }).value);
  if (tag === "Long") {
    const long = value as { toBigInt(): bigint };
    return long.toBigInt();
  }
  return undefined;
}

export function numbersEqual(a: number | bigint, b: number | bigint): boolean {
  if (typeof a === "bigint" && typeof b === "bigint") return a === b;
  if (typeof a === "number" && typeof b === "number") return a === b || (Number.isNaN(a) && Number.isNaN(b));
  // Mixed: compare exactly when the double is integral, otherwise never equal.
  const [big, num] = typeof a === "bigint" ? [a, b as number] : [b as bigint, a as number];
  return Number.isInteger(num) && BigInt(num) === big;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** `$type` aliases (https://www.mongodb.com/docs/manual/reference/operator/query/type/)
 *  mapped to what a decoded value can look like in JS. */
const TYPE_CHECKS: Record<string, (v: unknown) => boolean> = {
  double: (v) => typeof v === "number" || bsonTag(v) === "Double",
  string: (v) => typeof v === "string",
  object: (v) => isDocument(v),
  array: (v) => Array.isArray(v),
  binData: (v) => v instanceof Uint8Array || bsonTag(v) === "Binary" || bsonTag(v) === "UUID",
  undefined: (v) => v === undefined,
  objectId: (v) => bsonTag(v) === "ObjectId",
  bool: (v) => typeof v === "boolean",
  date: (v) => v instanceof Date,
  null: (v) => v === null,
  regex: (v) => v instanceof RegExp || bsonTag(v) === "BSONRegExp",
  dbPointer: (v) => bsonTag(v) === "DBPointer" || bsonTag(v) === "DBRef",
  javascript: (v) => bsonTag(v) === "Code" && (v as { scope?: unknown }).scope == null,
  symbol: (v) => bsonTag(v) === "BSONSymbol" || bsonTag(v) === "Symbol",
  javascriptWithScope: (v) => bsonTag(v) === "Code" && (v as { scope?: unknown }).scope != null,
  int: (v) => bsonTag(v) === "Int32" || (typeof v === "number" && Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX),
  timestamp: (v) => bsonTag(v) === "Timestamp",
  long: (v) => bsonTag(v) === "Long" || typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v)),
  decimal: (v) => bsonTag(v) === "Decimal128",
  minKey: (v) => bsonTag(v) === "MinKey",
  maxKey: (v) => bsonTag(v) === "MaxKey",
  number: (v) => numericValue(v) !== undefined || bsonTag(v) === "Decimal128",
};

export function isKnownTypeName(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(TYPE_CHECKS, name);
}

export function hasType(value: unknown, name: string): boolean {
  const check = TYPE_CHECKS[name];
  return check ? check(value) : false;
}

/** Short human-readable form of a value for failure messages. */
export function show(value: unknown): string {
  if (value === undefined) return "(absent)";
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Map) return show(Object.fromEntries(value));
  const tag = bsonTag(value);
  if (tag === "ObjectId") return `ObjectId(${String((value as { toHexString(): string }).toHexString())})`;
  if (tag === "Long" || tag === "Int32" || tag === "Double" || tag === "Decimal128") return `${tag}(${String(value)})`;
  if (tag === "Timestamp") return `Timestamp(${String(value)})`;
  try {
    const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
    if (text === undefined) return String(value);
    return text.length > 200 ? `${text.slice(0, 197)}...` : text;
  } catch {
    return String(value);
  }
}

function bytesOf(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  const tag = bsonTag(value);
  if (tag === "Binary" || tag === "UUID") return (value as { buffer: Uint8Array }).buffer;
  return undefined;
}

/** Equality of two non-document, non-array values, with flexible numerics. */
export function scalarsEqual(expected: unknown, actual: unknown): boolean {
  const en = numericValue(expected);
  const an = numericValue(actual);
  if (en !== undefined || an !== undefined) {
    return en !== undefined && an !== undefined && numbersEqual(en, an);
  }
  if (expected === null || actual === null || typeof expected !== "object" || typeof actual !== "object") {
    return expected === actual;
  }
  if (expected instanceof Date || actual instanceof Date) {
    return expected instanceof Date && actual instanceof Date && expected.getTime() === actual.getTime();
  }
  if (expected instanceof RegExp || actual instanceof RegExp) {
    const e = expected as { source?: string; pattern?: string; flags?: string; options?: string };
    const a = actual as { source?: string; pattern?: string; flags?: string; options?: string };
    return (e.source ?? e.pattern) === (a.source ?? a.pattern) && (e.flags ?? e.options) === (a.flags ?? a.options);
  }
  const eb = bytesOf(expected);
  const ab = bytesOf(actual);
  if (eb || ab) {
    const eSub = (expected as { sub_type?: number }).sub_type ?? 0;
    const aSub = (actual as { sub_type?: number }).sub_type ?? 0;
    return !!eb && !!ab && eSub === aSub && Buffer.from(eb).equals(Buffer.from(ab));
  }
  const et = bsonTag(expected);
  const at = bsonTag(actual);
  if (et !== at) return false;
  const equals = (expected as { equals?: (o: unknown) => boolean }).equals;
  if (typeof equals === "function") return equals.call(expected, actual);
  return String(expected) === String(actual);
}
