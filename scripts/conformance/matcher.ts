// "Evaluating Matches" of the unified test format
// (mongodb/specifications source/unified-test-format/unified-test-format.md).
//
// match() returns the first mismatch as a message (with a path such as
// `.updateDescription.truncatedArrays[0].newSize`) or null when the values
// match. A special operator this runner does not know throws
// UnimplementedError, so such a test fails instead of passing unchecked.
import { EJSON } from "bson";
import { documentEntries, documentGet, hasType, isDocument, isKnownTypeName, numericValue, scalarsEqual, show } from "./bson-values.js";
import { AssertionFailure, TestFileError, UnimplementedError } from "./errors.js";

export interface MatchOptions {
  /** Root-level actual documents may carry extra fields; nested ones may not. */
  root: boolean;
  /** The saved lsid of a session entity, for `$$sessionLsid`. */
  lsidOf?: (sessionId: string) => unknown;
}

/** What the whole match needs to know besides the two values. */
interface MatchScope {
  lsidOf?: (sessionId: string) => unknown;
}

type Doc = Record<string, unknown>;

/** `{ $$op: arg }`: an object whose first and only key starts with "$$". */
export function specialOperator(expected: unknown): [string, unknown] | undefined {
  if (!isDocument(expected) || expected instanceof Map) return undefined;
  const keys = Object.keys(expected);
  if (keys.length === 1 && keys[0]!.startsWith("$$")) return [keys[0]!, expected[keys[0]!]];
  return undefined;
}

export function match(expected: unknown, actual: unknown, opts: MatchOptions, path = ""): string | null {
  return matchAt(expected, actual !== undefined, actual, opts.root, path, { lsidOf: opts.lsidOf });
}

/** Results of iterables (find, aggregate): same length, and every element is
 *  matched as a root-level document. */
export function matchRootList(expected: unknown, actual: unknown, path = ""): string | null {
  if (!Array.isArray(expected)) return match(expected, actual, { root: true }, path);
  if (!Array.isArray(actual)) return `${where(path)}expected a list of ${expected.length} document(s), got ${show(actual)}`;
  if (actual.length !== expected.length) {
    return `${where(path)}expected ${expected.length} document(s), got ${actual.length}: ${show(actual)}`;
  }
  for (let i = 0; i < expected.length; i++) {
    const failure = match(expected[i], actual[i], { root: true }, `${path}[${i}]`);
    if (failure) return failure;
  }
  return null;
}

export function assertMatch(what: string, expected: unknown, actual: unknown, opts: MatchOptions): void {
  const failure = match(expected, actual, opts);
  if (failure) throw new AssertionFailure(`${what}: ${failure}`);
}

function where(path: string): string {
  return path ? `${path}: ` : "";
}

function matchAt(expected: unknown, present: boolean, actual: unknown, root: boolean, path: string, scope: MatchScope = {}): string | null {
  const op = specialOperator(expected);
  if (op) return applyOperator(op[0], op[1], present, actual, root, path, scope);
  if (!present) return `${where(path)}expected ${show(expected)}, but it is absent`;

  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${where(path)}expected an array ${show(expected)}, got ${show(actual)}`;
    if (actual.length !== expected.length) {
      return `${where(path)}expected ${expected.length} element(s), got ${actual.length}: ${show(actual)}`;
    }
    for (let i = 0; i < expected.length; i++) {
      const failure = matchAt(expected[i], true, actual[i], false, `${path}[${i}]`, scope);
      if (failure) return failure;
    }
    return null;
  }

  if (isDocument(expected)) {
    if (!isDocument(actual)) return `${where(path)}expected a document ${show(expected)}, got ${show(actual)}`;
    const expectedKeys = new Set<string>();
    for (const [key, value] of documentEntries(expected)) {
      expectedKeys.add(key);
      const got = documentGet(actual, key);
      const failure = matchAt(value, got.present, got.value, false, `${path}.${key}`, scope);
      if (failure) return failure;
    }
    if (!root) {
      const extra = documentEntries(actual)
        .map(([k]) => k)
        .filter((k) => !expectedKeys.has(k));
      if (extra.length > 0) return `${where(path)}unexpected field(s) ${extra.join(", ")} in nested document ${show(actual)}`;
    }
    return null;
  }

  if (isDocument(actual) || Array.isArray(actual)) return `${where(path)}expected ${show(expected)}, got ${show(actual)}`;
  return scalarsEqual(expected, actual) ? null : `${where(path)}expected ${show(expected)}, got ${show(actual)}`;
}

function applyOperator(name: string, arg: unknown, present: boolean, actual: unknown, root: boolean, path: string, scope: MatchScope): string | null {
  switch (name) {
    case "$$exists": {
      if (typeof arg !== "boolean") throw new TestFileError(`$$exists needs a boolean, got ${show(arg)}`);
      if (arg && !present) return `${where(path)}expected to exist, but it is absent`;
      if (!arg && present) return `${where(path)}expected to be absent, got ${show(actual)}`;
      return null;
    }
    case "$$type": {
      const names = Array.isArray(arg) ? arg : [arg];
      for (const n of names) {
        if (typeof n !== "string" || !isKnownTypeName(n)) throw new UnimplementedError(`$$type ${show(n)}`);
      }
      if (!present) return `${where(path)}expected a value of type ${names.join("|")}, but it is absent`;
      return names.some((n) => hasType(actual, n as string)) ? null : `${where(path)}expected type ${names.join("|")}, got ${show(actual)}`;
    }
    case "$$unsetOrMatches":
      // Absent is fine; otherwise match as usual. It does not change whether
      // the actual document counts as root-level (spec).
      return present ? matchAt(arg, present, actual, root, path, scope) : null;
    case "$$lte": {
      const limit = numericValue(arg);
      if (limit === undefined) throw new TestFileError(`$$lte needs a number, got ${show(arg)}`);
      const value = numericValue(actual);
      if (!present || value === undefined) return `${where(path)}expected a number <= ${show(arg)}, got ${show(actual)}`;
      return value <= limit ? null : `${where(path)}expected <= ${show(arg)}, got ${show(actual)}`;
    }
    case "$$matchAsRoot":
      if (!isDocument(arg)) throw new TestFileError(`$$matchAsRoot needs a document, got ${show(arg)}`);
      return matchAt(arg, present, actual, true, path, scope);
    case "$$sessionLsid": {
      // The lsid the session entity had when it was created, matched as a nested document.
      if (typeof arg !== "string") throw new TestFileError(`$$sessionLsid needs a session entity name, got ${show(arg)}`);
      if (!scope.lsidOf) throw new UnimplementedError("$$sessionLsid outside of a test's entities");
      return matchAt(scope.lsidOf(arg), present, actual, false, path, {});
    }
    case "$$matchAsDocument": {
      if (!present || typeof actual !== "string") return `${where(path)}expected an Extended JSON string, got ${show(actual)}`;
      let parsed: Doc;
      try {
        parsed = EJSON.parse(actual, { relaxed: false }) as Doc;
      } catch {
        return `${where(path)}expected an Extended JSON string, got ${show(actual)}`;
      }
      return matchAt(arg, true, parsed, false, path, scope);
    }
    default:
      // $$matchesEntity, $$matchesHexBytes and any future
      // operator: not needed by the suites we run, so refuse loudly.
      throw new UnimplementedError(`matching operator ${name}`);
  }
}

/** Collection contents in `outcome` must match exactly: the special matching
 *  rules do not apply, every level forbids extra keys, key order is free.
 *  Numbers still compare by value, because JSON can't say int vs double. */
export function matchExact(expected: unknown, actual: unknown, path = ""): string | null {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${where(path)}expected an array ${show(expected)}, got ${show(actual)}`;
    if (actual.length !== expected.length) return `${where(path)}expected ${expected.length} element(s), got ${actual.length}: ${show(actual)}`;
    for (let i = 0; i < expected.length; i++) {
      const failure = matchExact(expected[i], actual[i], `${path}[${i}]`);
      if (failure) return failure;
    }
    return null;
  }
  if (isDocument(expected)) {
    if (!isDocument(actual)) return `${where(path)}expected a document ${show(expected)}, got ${show(actual)}`;
    const expectedEntries = documentEntries(expected);
    for (const [key, value] of expectedEntries) {
      const got = documentGet(actual, key);
      if (!got.present) return `${where(path)}expected field ${key}, but it is absent in ${show(actual)}`;
      const failure = matchExact(value, got.value, `${path}.${key}`);
      if (failure) return failure;
    }
    const keys = new Set(expectedEntries.map(([k]) => k));
    const extra = documentEntries(actual)
      .map(([k]) => k)
      .filter((k) => !keys.has(k));
    return extra.length > 0 ? `${where(path)}unexpected field(s) ${extra.join(", ")} in ${show(actual)}` : null;
  }
  if (isDocument(actual) || Array.isArray(actual)) return `${where(path)}expected ${show(expected)}, got ${show(actual)}`;
  return scalarsEqual(expected, actual) ? null : `${where(path)}expected ${show(expected)}, got ${show(actual)}`;
}
