/**
 * The `updateDescription` of an update event, as mongod's "$v: 2" delta oplog
 * entries describe it. Two different sources, as in mongod:
 *
 *  - Operator updates (`$set`, `$inc`, ...) are logged by the update nodes
 *    themselves (src/mongo/db/update/*_node.cpp): each modified path is logged
 *    with its whole new value; a created path is logged at its first new
 *    component; `$push`/`$addToSet` that only append to a non-empty array log
 *    each appended element as `path.<index>`; an array-filter (`$[]`, `$[id]`)
 *    update that touches more than one element logs the whole array. No
 *    `truncatedArrays` ever come from operator updates.
 *  - Pipeline updates are logged as a diff of the document before and after
 *    (doc_diff.cpp): changed leaves by path, appended array elements by index,
 *    shrunk arrays in `truncatedArrays`, removed fields in `removedFields`.
 */
import { Query } from "mingo";
import type { Document } from "bson";
import type { UpdateDescription } from "./oplog";
import { valueKey } from "./store";

type Segment = string | number;

const empty = (): UpdateDescription => ({ updatedFields: {}, removedFields: [], truncatedArrays: [], disambiguatedPaths: {} });

/** Pipeline-style updates: a structural diff of before and after. */
export function describeUpdate(before: Document, after: Document): UpdateDescription {
  const d = empty();
  diffObjects(before, after, [], d);
  return d;
}

function diffObjects(a: Document, b: Document, at: Segment[], d: UpdateDescription): void {
  for (const key of Object.keys(b)) {
    if (!(key in a)) set(d, [...at, key], b[key]);
    else diffValues(a[key], b[key], [...at, key], d);
  }
  for (const key of Object.keys(a)) if (!(key in b)) remove(d, [...at, key]);
}

function diffValues(x: unknown, y: unknown, at: Segment[], d: UpdateDescription): void {
  if (valueKey(x) === valueKey(y)) return;
  if (isPlainObject(x) && isPlainObject(y)) return diffObjects(x, y, at, d);
  if (Array.isArray(x) && Array.isArray(y)) return diffArrays(x, y, at, d);
  set(d, at, y);
}

function diffArrays(x: unknown[], y: unknown[], at: Segment[], d: UpdateDescription): void {
  const common = Math.min(x.length, y.length);
  for (let i = 0; i < common; i++) diffValues(x[i], y[i], [...at, i], d);
  for (let i = common; i < y.length; i++) set(d, [...at, i], y[i]);
  if (y.length < x.length) d.truncatedArrays.push({ field: at.join("."), newSize: y.length });
}

/** Modifiers whose pure appends to a non-empty array are logged element by element. */
const APPENDERS = new Set(["$push", "$addToSet"]);

interface Logged {
  op: string;
  /** The operator's argument for this path (for `$push` modifiers). */
  arg: unknown;
}

/**
 * Operator updates: what mongod's update nodes log for `u` applied to `before`,
 * giving `after`. `arrayFilters` resolve `$[id]`; `$` resolves to the one element
 * that changed (the one the query matched).
 */
export function describeOperatorUpdate(before: Document, after: Document, u: Document, arrayFilters: Document[] = []): UpdateDescription {
  const d = empty();
  for (const [op, fields] of Object.entries(u)) {
    if (op === "$setOnInsert" || fields === null || typeof fields !== "object") continue;
    for (const [path, arg] of Object.entries(fields as Document)) {
      if (op === "$rename") {
        walk(path.split("."), before, after, [], { op: "$unset", arg }, arrayFilters, d);
        if (typeof arg === "string") walk(arg.split("."), before, after, [], { op: "$set", arg }, arrayFilters, d);
      } else {
        walk(path.split("."), before, after, [], { op, arg }, arrayFilters, d);
      }
    }
  }
  return d;
}

/** Follows an update path (with positional parts) through before/after, logging at the leaves. */
function walk(rest: string[], b: unknown, a: unknown, at: Segment[], how: Logged, filters: Document[], d: UpdateDescription): void {
  if (rest.length === 0) return logLeaf(at, how, d, b, a);
  const [head = "", ...tail] = rest;
  const positional = head === "$" || head === "$[]" || /^\$\[\w+\]$/.test(head);
  if (!positional) {
    const key: Segment = Array.isArray(b) && /^\d+$/.test(head) ? Number(head) : head;
    const [bNext, aNext] = [child(b, key), child(a, key)];
    // The path leaves `before`: everything from here on was created (logged at its first new part).
    if (bNext === undefined) return logLeaf([...at, key], how, d, undefined, aNext);
    return walk(tail, bNext, aNext, [...at, key], how, filters, d);
  }
  if (!Array.isArray(b) || !Array.isArray(a)) return;
  const changed = (i: number) => valueKey(b[i]) !== valueKey(a[i]);
  if (head === "$") {
    // `$` names the single element the query matched; it is the one that changed.
    const i = b.findIndex((_, k) => changed(k));
    if (i >= 0) walk(tail, b[i], a[i], [...at, i], how, filters, d);
    return;
  }
  const matching = b.map((_, i) => i).filter((i) => head === "$[]" || elementMatches(head.slice(2, -1), b[i], filters));
  // update_array_node.cpp: with at most one matching element the child logs itself; otherwise
  // the whole array is logged if several elements changed, or the one changed element if one did.
  if (matching.length <= 1) {
    for (const i of matching) walk(tail, b[i], a[i], [...at, i], how, filters, d);
    return;
  }
  const modified = matching.filter(changed);
  if (modified.length > 1) set(d, at, a);
  else if (modified.length === 1) set(d, [...at, modified[0]!], a[modified[0]!]);
}

function elementMatches(identifier: string, element: unknown, filters: Document[]): boolean {
  const filter = filters.find((f) => Object.keys(f).some((k) => k === identifier || k.startsWith(`${identifier}.`)));
  return filter ? new Query(filter).test({ [identifier]: element }) : false;
}

function logLeaf(at: Segment[], how: Logged, d: UpdateDescription, b: unknown, a: unknown): void {
  if (b === undefined && a === undefined) return; // e.g. $unset of a missing field: a no-op
  if (a === undefined) return remove(d, at); // $unset, the source of a $rename, ...
  if (b !== undefined && valueKey(a) === valueKey(b)) return; // no-op (e.g. $set to the same value)
  if (APPENDERS.has(how.op) && isPureAppend(b, a, how)) {
    for (let i = (b as unknown[]).length; i < (a as unknown[]).length; i++) set(d, [...at, i], (a as unknown[])[i]);
    return;
  }
  set(d, at, a);
}

/** push_node.cpp: appending to a non-empty array, with no $position/$slice/$sort, is kArrayAppendUpdate. */
function isPureAppend(b: unknown, a: unknown, how: Logged): boolean {
  if (!Array.isArray(b) || !Array.isArray(a) || b.length === 0 || a.length <= b.length) return false;
  const arg = how.arg;
  if (how.op === "$push" && isPlainObject(arg) && ("$position" in arg || "$slice" in arg || "$sort" in arg)) return false;
  return b.every((v, i) => valueKey(v) === valueKey(a[i]));
}

function child(node: unknown, key: Segment): unknown {
  if (node === null || typeof node !== "object") return undefined;
  return (node as Document)[key as string];
}

function set(d: UpdateDescription, at: Segment[], value: unknown): void {
  d.updatedFields[at.join(".")] = value;
  disambiguate(d, at);
}

function remove(d: UpdateDescription, at: Segment[]): void {
  d.removedFields.push(at.join("."));
  disambiguate(d, at);
}

/** A field name that is numeric or holds a dot reads like something else once joined. */
function disambiguate(d: UpdateDescription, at: Segment[]): void {
  if (at.some((s) => typeof s === "string" && (/^\d+$/.test(s) || s.includes(".")))) d.disambiguatedPaths[at.join(".")] = at;
}

function isPlainObject(v: unknown): v is Document {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
