/**
 * Private-field semantics, shared by the mapper and (later) the snapshot route.
 *
 * A private field is a top-level name (filters/schema.ts enforces it), and it is
 * private "with everything under it": a dotted path is private iff its first
 * segment is a private field. So `secrets`, `secrets.apiKey` and `secrets.0.k`
 * are private; `secretsCount` is not.
 *
 * The change-stream pipeline already removed these fields inside MongoDB; this
 * is the second line of defence, applied per collection.
 */
import type { Changes } from "./schemas";

export function isPrivatePath(path: string, privateFields: ReadonlySet<string>): boolean {
  if (privateFields.size === 0) return false;
  const dot = path.indexOf(".");
  return privateFields.has(dot === -1 ? path : path.slice(0, dot));
}

/** A shallow copy of `doc` without its private top-level fields (`doc` itself is not modified). */
export function redactDoc<T extends Record<string, unknown>>(doc: T, privateFields: ReadonlySet<string>): T {
  if (privateFields.size === 0) return doc;
  let hit = false;
  for (const field of privateFields) {
    if (Object.hasOwn(doc, field)) {
      hit = true;
      break;
    }
  }
  if (!hit) return doc;
  return Object.fromEntries(Object.entries(doc).filter(([key]) => !privateFields.has(key))) as T;
}

/** `changes` without any key, removed path or truncated array that is private. */
export function redactChanges(changes: Changes, privateFields: ReadonlySet<string>): Changes {
  if (privateFields.size === 0) return changes;
  const redacted: Changes = {
    set: Object.fromEntries(Object.entries(changes.set).filter(([key]) => !isPrivatePath(key, privateFields))),
    unset: changes.unset.filter((path) => !isPrivatePath(path, privateFields)),
  };
  const truncated = changes.truncated?.filter((t) => !isPrivatePath(t.field, privateFields));
  if (truncated && truncated.length > 0) redacted.truncated = truncated;
  return redacted;
}
