/**
 * What the simulator stores is immutable, and what it hands to a pipeline is a copy.
 *
 * Stored documents, oplog entries and images are shared by every reader: the store, each
 * change stream, snapshot reads. A pipeline stage run by the query engine ($unset, $set,
 * $project, …) edits the objects it is given in place, so a reader must never be given a
 * stored object to run a pipeline on. Two rules, each cheap where it is paid:
 * - `freezeDeep` once per write: any code path that would still mutate stored data throws a
 *   TypeError (strict mode) instead of corrupting it silently;
 * - `copyDeep` only where a pipeline or projection runs on what is read (a change stream with
 *   follow-on stages, aggregate, find/findAndModify with a projection, $currentOp with stages).
 *
 * Only plain objects and arrays are containers a stage can change; BSON values (ObjectId,
 * Long, Timestamp, Binary, Decimal128, Date, …) are shared as they are, which keeps the copy
 * cheaper than a BSON round trip and keeps every type as stored.
 */

function isContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  if (Array.isArray(value)) return true;
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function freezeDeep<T>(value: T): T {
  if (!isContainer(value) || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const child of Object.values(value)) freezeDeep(child);
  return value;
}

export function copyDeep<T>(value: T): T {
  if (Array.isArray(value)) return value.map(copyDeep) as T;
  if (!isContainer(value)) return value;
  const out: Record<string, unknown> = Object.getPrototypeOf(value) === null ? Object.create(null) : {};
  for (const key of Object.keys(value)) out[key] = copyDeep((value as Record<string, unknown>)[key]);
  return out as T;
}
