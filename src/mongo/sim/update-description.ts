/**
 * The `updateDescription` of an update event, computed by diffing the document
 * before and after, the way MongoDB's delta ("$v: 2") oplog entries describe it:
 * changed leaves by dotted path, appended array elements by index, shrunk arrays
 * in `truncatedArrays`, removed fields in `removedFields`.
 */
import type { Document } from "bson";
import type { UpdateDescription } from "./oplog";
import { valueKey } from "./store";

type Segment = string | number;

export function describeUpdate(before: Document, after: Document): UpdateDescription {
  const d: UpdateDescription = { updatedFields: {}, removedFields: [], truncatedArrays: [], disambiguatedPaths: {} };
  diffObjects(before, after, [], d);
  return d;
}

function diffObjects(a: Document, b: Document, at: Segment[], d: UpdateDescription): void {
  for (const key of Object.keys(b)) {
    if (!(key in a)) set(d, [...at, key], b[key]);
    else diffValues(a[key], b[key], [...at, key], d);
  }
  for (const key of Object.keys(a)) if (!(key in b)) record(d, [...at, key], "removed");
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

function set(d: UpdateDescription, at: Segment[], value: unknown): void {
  d.updatedFields[at.join(".")] = value;
  record(d, at, "updated");
}

function record(d: UpdateDescription, at: Segment[], how: "updated" | "removed"): void {
  const path = at.join(".");
  if (how === "removed") d.removedFields.push(path);
  // A field name that is numeric or holds a dot reads like something else once joined.
  if (at.some((s) => typeof s === "string" && (/^\d+$/.test(s) || s.includes(".")))) d.disambiguatedPaths[path] = at;
}

function isPlainObject(v: unknown): v is Document {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
