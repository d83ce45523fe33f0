/**
 * Embedded canvas entities (a filter's `entities`): one document holds arrays, or
 * objects keyed by id, of nodes, edges, …; a change of the document becomes one
 * event per element that changed. Pure functions; the images and the update description are
 * taken as the driver gives them (BSON values), and only elements that go out are converted to
 * plain JSON (plain-json.ts): in a 200-node document that moves one node, one element.
 *
 * Exact by construction: the events compare the elements BEFORE the change with
 * the elements AFTER it. Before is the pre-image (`fullDocumentBeforeChange`);
 * after is that pre-image with the change's own `updateDescription` applied, not
 * the `updateLookup` document, which is the document as read later and may hold
 * later writes. Comparing states rather than interpreting the update description
 * makes every way MongoDB reports one change (an array shrunk in `truncatedArrays`
 * or sent whole in `updatedFields`, element paths or whole arrays) give the same
 * events. Without a pre-image some changes still give exact element events and the
 * others a "replace all of this kind" list; `Derivation` names each case
 * (docs/filters.md, "Embedded entities").
 */
import { toPlainJson } from "./plain-json";
import { redactDoc } from "./redact";
import type { ElementRule } from "./rule";
import type { Changes } from "./schemas";

type Obj = Record<string, unknown>;

/** An `updateDescription`: values as the driver gives them (BSON values), paths and sizes plain. */
export interface UpdateDescriptionJson {
  readonly updatedFields: Obj;
  readonly removedFields: readonly string[];
  readonly truncatedArrays: ReadonlyArray<{ field: string; newSize: number }>;
  /** Path → its segments, for paths whose numeric or dotted parts would read otherwise (8.2+, or showExpandedEvents). */
  readonly disambiguatedPaths?: Readonly<Record<string, ReadonlyArray<string | number>>>;
}

export interface ElementEvent {
  readonly op: "insert" | "update" | "delete";
  readonly id: string;
  readonly doc: Obj | null;
  readonly changes?: Changes;
}

/** How one kind's events were derived, counted in /metrics (`flowsync_element_derivations_total`). */
export type Derivation =
  /** Insert of the document: all its elements are inserted. */
  | "insert"
  /** Exact: the elements before (pre-image) vs after (pre-image + update description, or the new document). */
  | "pre-image"
  /** No pre-image, but the update does not touch this kind's path: exact, no events. */
  | "untouched"
  /** No pre-image, the update set (or removed) the whole collection: exact, as a replace-all. */
  | "whole-value"
  /** replaceOne without pre-image: exact, as a replace-all from the new document. */
  | "new-document"
  /** Delete without pre-image: exact, as a replace-all with no elements. */
  | "deleted"
  /** Update without pre-image: a replace-all from the `updateLookup` document, which may be newer than the change. */
  | "lookup"
  /**
   * Update whose paths cannot be read without `disambiguatedPaths`: an element id with a dot, or a path
   * into an element the pre-image does not have. A replace-all from the `updateLookup` document, as "lookup".
   */
  | "ambiguous-path"
  /** Update without pre-image of a document already gone at lookup: nothing (its delete follows). */
  | "no-image";

/** The cases that read the document as it is later (the `updateLookup` document): derived again, they may differ. */
export const INEXACT_DERIVATIONS: ReadonlySet<Derivation> = new Set(["lookup", "ambiguous-path", "no-image"]);

export type KindResult =
  | { readonly rule: ElementRule; readonly how: Derivation; readonly events: readonly ElementEvent[] }
  | { readonly rule: ElementRule; readonly how: Derivation; readonly replaceAll: readonly Obj[] };

export type ElementSkipReason =
  /** An element whose key field is missing, empty or not a string or number. */
  | "element-key"
  /** A second element with a key already seen in the same collection: the later one is left out. */
  | "element-duplicate"
  /** An element that is not an object, or a path whose value is neither an array nor an object. */
  | "element-shape";

export interface ElementSkip {
  readonly reason: ElementSkipReason;
  readonly detail: string;
}

export interface Derived {
  readonly kinds: readonly KindResult[];
  /** Bad elements the change brought (those already there before it were reported when they were written). */
  readonly skips: readonly ElementSkip[];
  /** The document after the change, when it is known exactly (insert, replace, update with pre-image). */
  readonly after: Obj | undefined;
}

export interface DeriveInput {
  readonly op: "insert" | "update" | "replace" | "delete";
  /** Pre-image (as the driver gives it). */
  readonly pre: Obj | undefined;
  /** `fullDocument`: the new document (insert, replace) or the `updateLookup` one (update). */
  readonly post: Obj | undefined;
  readonly update: UpdateDescriptionJson | undefined;
}

/** A document (not an array, not a BSON value such as an ObjectId). */
function isObj(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value) && typeof (value as { _bsontype?: unknown })._bsontype !== "string";
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function getPath(doc: unknown, segments: readonly string[]): unknown {
  let current = doc;
  for (const segment of segments) {
    if (!isObj(current)) return undefined;
    current = current[segment];
  }
  return current;
}

/** An element key as the event `id`: a non-empty string as is, a finite number as its digits (BSON values as their plain JSON). */
function keyOf(raw: unknown): string | undefined {
  const value = typeof raw === "object" && raw !== null ? toPlainJson(raw) : raw;
  if (typeof value === "string" && value.length > 0 && value.length <= 1024) return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

interface Element {
  readonly id: string;
  /** The element as found in the document, its key field set for an object keyed by id: the same object in both states when untouched. */
  readonly raw: Obj;
  readonly rule: ElementRule;
}

/** The element as events carry it: plain JSON, private fields removed. */
export function shown(e: Element): Obj {
  return redactDoc(toPlainJson(e.raw) as Obj, e.rule.privateFields);
}

/**
 * The elements of one kind in `doc`, in document order, private fields removed. An array's
 * elements are named by their `key` field; an object's by their property name (written into
 * the element's `key` field in events, so both shapes look the same to clients).
 */
export function elementsOf(doc: unknown, rule: ElementRule, skips?: ElementSkip[]): Element[] {
  return elementsIn(getPath(doc, rule.segments), rule, skips);
}

function elementsIn(value: unknown, rule: ElementRule, skips?: ElementSkip[]): Element[] {
  if (value === undefined || value === null) return [];
  const out: Element[] = [];
  const seen = new Set<string>();
  const add = (id: string | undefined, raw: unknown, where: string) => {
    if (!isObj(raw)) return void skips?.push({ reason: "element-shape", detail: `${where} is not an object` });
    if (id === undefined) return void skips?.push({ reason: "element-key", detail: `${where} has no valid '${rule.key}' (a non-empty string or a number)` });
    if (seen.has(id))
      return void skips?.push({ reason: "element-duplicate", detail: `${where}: '${rule.key}' ${id} already appears earlier in '${rule.path}'` });
    seen.add(id);
    const named = Array.isArray(value) || raw[rule.key] === id ? raw : { ...raw, [rule.key]: id };
    out.push({ id, raw: named, rule });
  };
  if (Array.isArray(value)) value.forEach((raw, i) => add(isObj(raw) ? keyOf(raw[rule.key]) : undefined, raw, `${rule.path}.${i}`));
  else if (isObj(value))
    for (const [name, raw] of Object.entries(value)) {
      // An id with a dot reads as two path segments in an update description: it cannot be told apart.
      if (name.includes(".")) skips?.push({ reason: "element-key", detail: `${rule.path}: key '${name}' contains '.'` });
      else add(name, raw, `${rule.path}.${name}`);
    }
  else skips?.push({ reason: "element-shape", detail: `'${rule.path}' is neither an array nor an object` });
  return out;
}

/** `changes` of one element: changed leaves of nested objects by dotted path; arrays and scalars whole. */
export function diffElement(before: Obj, after: Obj): Changes {
  const changes: Changes = { set: {}, unset: [] };
  diffInto(before, after, "", changes);
  return changes;
}

function diffInto(a: Obj, b: Obj, prefix: string, out: Changes): void {
  for (const [key, value] of Object.entries(b)) {
    const path = prefix + key;
    if (!Object.hasOwn(a, key)) out.set[path] = value;
    else if (isObj(a[key]) && isObj(value)) diffInto(a[key], value, `${path}.`, out);
    else if (!sameJson(a[key], value)) out.set[path] = value;
  }
  for (const key of Object.keys(a)) if (!Object.hasOwn(b, key)) out.unset.push(prefix + key);
}

/** Deletes first (in the old order), then inserts and updates in the order of the document after the change. */
export function diffElements(before: readonly Element[], after: readonly Element[]): ElementEvent[] {
  const old = new Map(before.map((e) => [e.id, e]));
  const now = new Set(after.map((e) => e.id));
  const events: ElementEvent[] = before.filter((e) => !now.has(e.id)).map((e) => ({ op: "delete", id: e.id, doc: null }));
  for (const e of after) {
    const prev = old.get(e.id);
    if (prev === undefined) {
      events.push({ op: "insert", id: e.id, doc: shown(e) });
      continue;
    }
    // An element the update did not touch is the same object before and after (copy on write).
    if (prev.raw === e.raw) continue;
    const [a, b] = [shown(prev), shown(e)];
    if (sameJson(a, b)) continue;
    // Equal but for the order of fields (a replaceOne that rewrote the element): no change to tell.
    const changes = diffElement(a, b);
    if (Object.keys(changes.set).length > 0 || changes.unset.length > 0) events.push({ op: "update", id: e.id, doc: b, changes });
  }
  return events;
}

// --- applying an update description --------------------------------------

function segmentsOf(path: string, update: UpdateDescriptionJson): ReadonlyArray<string | number> {
  return update.disambiguatedPaths?.[path] ?? path.split(".");
}

/** An array index, when `container` is an array and the segment names one (or was disambiguated as a number). */
function indexIn(container: unknown, segment: string | number): number | undefined {
  if (!Array.isArray(container)) return undefined;
  if (typeof segment === "number") return segment;
  return /^\d+$/.test(segment) ? Number(segment) : undefined;
}

/**
 * The container at `segments` minus the last, copied on the way down (copy on write: what the
 * update does not touch stays shared with the pre-image, so untouched elements keep their
 * identity and `diffElements` can skip them without comparing).
 */
function parentOf(doc: Obj, segments: ReadonlyArray<string | number>, create: boolean, copied: Set<unknown>): unknown {
  let current: unknown = doc;
  for (const segment of segments.slice(0, -1)) {
    const index = indexIn(current, segment);
    const container = current as Record<string | number, unknown>;
    const key = index ?? String(segment);
    let next = container[key];
    if ((next === undefined || next === null) && create && (isObj(current) || index !== undefined)) next = {};
    if (typeof next !== "object" || next === null) return undefined;
    if (!copied.has(next)) {
      next = Array.isArray(next) ? [...next] : { ...(next as Obj) };
      copied.add(next);
      container[key] = next;
    }
    current = next;
  }
  return current;
}

/**
 * `pre` with `update` applied as MongoDB applied it: arrays truncated, fields removed, then
 * fields set (a set past an array's end pads with null). A new object that shares every part
 * the update did not touch with `pre`; `pre` itself is untouched.
 */
export function applyUpdateDescription(pre: Obj, update: UpdateDescriptionJson): Obj {
  const doc = { ...pre };
  const copied = new Set<unknown>([doc]);
  const at = (path: string, create: boolean) => {
    const segments = segmentsOf(path, update);
    const parent = parentOf(doc, segments, create, copied);
    const last = segments[segments.length - 1]!;
    return { parent, last, index: indexIn(parent, last) };
  };
  for (const { field, newSize } of update.truncatedArrays) {
    // The array itself is replaced by a shorter copy: the pre-image's array stays whole.
    const { parent, last, index } = at(field, false);
    if (parent === undefined) continue;
    const key = index ?? String(last);
    const array = (parent as Record<string | number, unknown>)[key];
    if (Array.isArray(array) && array.length > newSize) {
      const shorter = array.slice(0, newSize);
      copied.add(shorter);
      (parent as Record<string | number, unknown>)[key] = shorter;
    }
  }
  for (const path of update.removedFields) {
    const { parent, last, index } = at(path, false);
    // $unset of an array element leaves null in its place.
    if (index !== undefined) (parent as unknown[])[index] = null;
    else if (isObj(parent)) delete parent[String(last)];
  }
  for (const [path, value] of Object.entries(update.updatedFields)) {
    const { parent, last, index } = at(path, true);
    if (index !== undefined) {
      const array = parent as unknown[];
      while (array.length < index) array.push(null);
      array[index] = value;
    } else if (isObj(parent)) parent[String(last)] = value;
  }
  return doc;
}

// --- which case ------------------------------------------------------------

const under = (path: string, prefix: string) => path === prefix || path.startsWith(`${prefix}.`);

/** The whole collection's new value when the update set or removed it (or an ancestor) whole. */
function wholeValue(rule: ElementRule, update: UpdateDescriptionJson): { value: unknown } | undefined {
  for (const [key, value] of Object.entries(update.updatedFields)) {
    if (under(rule.path, key)) return { value: getPath(value, rule.segments.slice(key.split(".").length)) };
  }
  if (update.removedFields.some((key) => under(rule.path, key))) return { value: undefined };
  return undefined;
}

/**
 * Whether applying `update` to `pre` could misread a path under an object keyed by id (the
 * elements of an array are addressed by index, which cannot be misread): the pre-image has a
 * key with a dot, or a path without `disambiguatedPaths` reaches into an element `pre` does not
 * have (`nodes.n.1.x` for an element `n.1` written since). Applying it would invent an element.
 */
function ambiguous(rule: ElementRule, pre: Obj, update: UpdateDescriptionJson): boolean {
  const container = getPath(pre, rule.segments);
  if (!isObj(container) || Array.isArray(container)) return false;
  if (Object.keys(container).some((k) => k.includes("."))) return true;
  const depth = rule.segments.length;
  const paths = [...Object.keys(update.updatedFields), ...update.removedFields, ...update.truncatedArrays.map((t) => t.field)];
  return paths.some((path) => {
    if (update.disambiguatedPaths?.[path] || !under(path, rule.path)) return false;
    const segments = path.split(".");
    return segments.length > depth + 1 && !Object.hasOwn(container, segments[depth]!);
  });
}

function touches(rule: ElementRule, update: UpdateDescriptionJson): boolean {
  const hit = (key: string) => under(key, rule.path) || under(rule.path, key);
  return Object.keys(update.updatedFields).some(hit) || update.removedFields.some(hit) || update.truncatedArrays.some((t) => hit(t.field));
}

/** The element events of one change, kind by kind (see the module comment and `Derivation`). */
export function deriveElements(rules: readonly ElementRule[], input: DeriveInput): Derived {
  const { op, pre, post, update } = input;
  const skips: ElementSkip[] = [];
  let after: Obj | undefined;
  if (op === "insert" || op === "replace") after = post;
  else if (op === "update" && pre && update) after = applyUpdateDescription(pre, update);

  const kinds = rules.map((rule): KindResult => {
    const events = (how: Derivation, before: unknown): KindResult => {
      // A bad element already there before the change was reported when it was written: only new ones are.
      const known: ElementSkip[] = [];
      const found: ElementSkip[] = [];
      const result = diffElements(elementsOf(before, rule, known), elementsOf(after, rule, found));
      // Matched by what they say without their array index, as many times as they were there: a bad element
      // that only moved (a $push at position 0) is not new, a second one like it is.
      const old = new Map<string, number>();
      for (const k of known) old.set(skipKey(k), (old.get(skipKey(k)) ?? 0) + 1);
      for (const k of found) {
        const left = old.get(skipKey(k)) ?? 0;
        if (left > 0) old.set(skipKey(k), left - 1);
        else skips.push(k);
      }
      return { rule, how, events: result };
    };
    const replaceAll = (how: Derivation, value: unknown): KindResult => ({
      rule,
      how,
      replaceAll: elementsIn(value, rule, skips).map(shown),
    });
    if (op === "insert") return events("insert", undefined);
    const unreadable = op === "update" && pre !== undefined && update !== undefined && ambiguous(rule, pre, update);
    if (pre && !unreadable) return events("pre-image", pre);
    if (op === "replace") return replaceAll("new-document", getPath(post, rule.segments));
    if (op === "delete") return replaceAll("deleted", undefined);
    if (!update || !touches(rule, update)) return { rule, how: "untouched", events: [] };
    const whole = wholeValue(rule, update);
    if (whole) return replaceAll("whole-value", whole.value);
    if (post) return replaceAll(unreadable ? "ambiguous-path" : "lookup", getPath(post, rule.segments));
    return { rule, how: "no-image", events: [] };
  });
  return { kinds, skips, after };
}

/** A skip without the array index in its detail (`nodes.3 has no valid 'id'` → `nodes.# has no valid 'id'`). */
const skipKey = (k: ElementSkip) => `${k.reason} ${k.detail.replace(/\.\d+(?=[\s:])/, ".#")}`;

// --- the document-level part ----------------------------------------------

/** `doc` without the entity collections (they travel as their own events). */
export function withoutElements(doc: Obj, rules: readonly ElementRule[]): Obj {
  let out = doc;
  for (const rule of rules) out = removePath(out, rule.segments);
  return out;
}

function removePath(doc: Obj, segments: readonly string[]): Obj {
  const [head, ...rest] = segments;
  if (head === undefined || !Object.hasOwn(doc, head)) return doc;
  if (rest.length === 0) {
    const { [head]: _gone, ...others } = doc;
    return others;
  }
  const child = doc[head];
  return isObj(child) ? { ...doc, [head]: removePath(child, rest) } : doc;
}

/**
 * The document-level part of an update description: keys under an entity path dropped, and
 * values of keys above one (e.g. `data` for `data.nodes`) without it. Undefined if nothing is left.
 */
export function documentChanges(changes: Changes, rules: readonly ElementRule[]): Changes | undefined {
  const inElements = (key: string) => rules.some((rule) => under(key, rule.path));
  const set: Obj = {};
  for (const [key, value] of Object.entries(changes.set)) {
    if (inElements(key)) continue;
    const inner = rules.filter((rule) => under(rule.path, key)).map((rule) => ({ ...rule, segments: rule.segments.slice(key.split(".").length) }));
    set[key] = inner.length > 0 && isObj(value) ? withoutElements(value, inner) : value;
  }
  const unset = changes.unset.filter((key) => !inElements(key));
  const truncated = changes.truncated?.filter((t) => !inElements(t.field));
  if (Object.keys(set).length === 0 && unset.length === 0 && !truncated?.length) return undefined;
  const out: Changes = { set, unset };
  if (truncated?.length) out.truncated = truncated;
  return out;
}
