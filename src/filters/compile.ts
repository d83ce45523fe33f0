/**
 * Filters → the pipeline of the ONE database-level change stream, plus a
 * per-collection rule table for the mapper. Done once at startup; the result is
 * frozen and shared.
 *
 * Pipeline, in order:
 * 1. `$match`: a document change passes if its collection has a filter, its
 *    operation is enabled there and the filter's extra `match` holds. Lifecycle
 *    events always pass so that the watcher can react to them (the mapper skips
 *    them as "lifecycle"): `invalidate` and `dropDatabase`, and `drop`/`rename`
 *    of a watched collection (or a rename onto a watched name).
 * 2. `$unset` of every private field under `fullDocument.`,
 *    `fullDocumentBeforeChange.` and `updateDescription.updatedFields.`.
 * 3. `$set` of `updateDescription` (updates only) dropping the keys of
 *    `updatedFields` and `disambiguatedPaths`, and the entries of `removedFields`
 *    and `truncatedArrays`, that are a private field or lie under one. Needed because an update such as
 *    `{ $set: { "secrets.key": … } }` reports the literal key `"secrets.key"`, which
 *    no path-based `$unset` can reach.
 *
 * 4. For the private fields of embedded entities (a filter's `entities`), in the collections
 *    whose filters have such fields only: the same
 *    fields removed from every element, in `fullDocument`, `fullDocumentBeforeChange`
 *    and `updateDescription.updatedFields` (whole arrays, whole elements such as
 *    `nodes.3`, and values of keys above the path such as `data` for `data.nodes`),
 *    and the keys, removed paths and truncated arrays at or under one
 *    (`nodes.3.credentials.apiKey`) dropped.
 *
 * Caveat (docs/filters.md): the redaction is the UNION of all filters' private fields,
 * applied to every watched collection, because one stream serves them all. A
 * field private in one collection is therefore also removed from the others.
 * The mapper re-applies each collection's own list as a second line of defence.
 *
 * The change event's `_id` (the resume token) is never touched: the driver
 * rejects events without it, and it is our cursor.
 */
import { ObjectId, type Document } from "bson";
import { FlowsyncError } from "../errors";
import type { Rule } from "../events/rule";
import { OPERATIONS } from "../events/schemas";
import type { FilterSpec } from "./schema";

/** Non-document events let through for the watcher. */
export const LIFECYCLE_OPERATIONS = ["invalidate", "drop", "dropDatabase", "rename"] as const;

export interface CompiledFilters {
  readonly pipeline: readonly Document[];
  readonly byCollection: ReadonlyMap<string, Rule>;
  readonly collections: readonly string[];
  /** The union applied in the pipeline. */
  readonly privateFields: readonly string[];
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function toRule(spec: FilterSpec): Rule {
  return Object.freeze({
    collection: spec.collection,
    event: spec.event,
    entity: spec.entity,
    routeBy: spec.routeBy,
    routePath: Object.freeze(spec.routeBy.split(".")),
    operations: new Set(spec.operations),
    privateFields: new Set(spec.privateFields),
    schema: spec.document,
    elements: Object.freeze(
      Object.entries(spec.entities ?? {}).map(([path, e]) =>
        Object.freeze({ path, segments: Object.freeze(path.split(".")), entity: e.entity, key: e.key, privateFields: new Set(e.privateFields) }),
      ),
    ),
    source: spec.source,
  });
}

function matchStage(specs: readonly FilterSpec[], collections: string[]): Document {
  const clauses: Document[] = specs.map((spec) => {
    const base = { "ns.coll": spec.collection, operationType: { $in: [...spec.operations] } };
    // $and rather than spreading: an extra match may itself use `ns.coll` or `operationType`.
    return spec.match && Object.keys(spec.match).length > 0 ? { $and: [base, spec.match] } : base;
  });
  clauses.push(
    { operationType: { $in: ["invalidate", "dropDatabase"] } },
    { operationType: { $in: ["drop", "rename"] }, "ns.coll": { $in: collections } },
    { operationType: "rename", "to.coll": { $in: collections } },
  );
  return { $match: { $or: clauses } };
}

// An aggregation expression: true when the string `key` is a private field or a path under one.
// $substrCP rather than $indexOfCP: same meaning, and the simulator's engine (mingo) has it.
function isPrivateKeyExpr(key: string, fields: readonly string[]): Document {
  return {
    $or: fields.flatMap((field) => [{ $eq: [key, field] }, { $eq: [{ $substrCP: [key, 0, [...field].length + 1] }, `${field}.`] }]),
  };
}

function dottedKeysStage(fields: readonly string[]): Document {
  const keep = (key: string) => ({ $not: [isPrivateKeyExpr(key, fields)] });
  return {
    $set: {
      updateDescription: {
        $cond: {
          if: { $eq: ["$operationType", "update"] },
          then: {
            $mergeObjects: [
              "$updateDescription",
              {
                updatedFields: {
                  $arrayToObject: {
                    $filter: { input: { $objectToArray: "$updateDescription.updatedFields" }, as: "f", cond: keep("$$f.k") },
                  },
                },
                removedFields: { $filter: { input: "$updateDescription.removedFields", as: "r", cond: keep("$$r") } },
                truncatedArrays: {
                  $filter: { input: "$updateDescription.truncatedArrays", as: "t", cond: keep("$$t.field") },
                },
                // Present by default from 8.2 (keys are the ambiguous dotted paths); left absent otherwise.
                disambiguatedPaths: {
                  $cond: {
                    if: { $eq: [{ $type: "$updateDescription.disambiguatedPaths" }, "object"] },
                    then: {
                      $arrayToObject: {
                        $filter: {
                          input: { $objectToArray: "$updateDescription.disambiguatedPaths" },
                          as: "d",
                          cond: keep("$$d.k"),
                        },
                      },
                    },
                    else: "$$REMOVE",
                  },
                },
              },
            ],
          },
          // Non-update events have no updateDescription; $$REMOVE keeps it that way.
          else: "$$REMOVE",
        },
      },
    },
  };
}

// --- private fields inside embedded entities ---------------------------------

const isType = (expr: unknown, type: string) => ({ $eq: [{ $type: expr }, type] });

/** One element without its private fields (a non-object is left as it is). */
function redactElementExpr(expr: string, fields: readonly string[], depth: number): Document {
  const v = `e${depth}`;
  return {
    $cond: [
      isType(expr, "object"),
      { $arrayToObject: { $filter: { input: { $objectToArray: expr }, as: v, cond: { $not: [{ $in: [`$$${v}.k`, fields] }] } } } },
      expr,
    ],
  };
}

/** A collection of elements (array, or object keyed by id) with each element redacted. */
function redactCollectionExpr(expr: string, fields: readonly string[], depth: number): Document {
  const el = `el${depth}`;
  const kv = `kv${depth}`;
  return {
    $switch: {
      branches: [
        { case: isType(expr, "array"), then: { $map: { input: expr, as: el, in: redactElementExpr(`$$${el}`, fields, depth + 1) } } },
        {
          case: isType(expr, "object"),
          then: {
            $arrayToObject: {
              $map: { input: { $objectToArray: expr }, as: kv, in: { k: `$$${kv}.k`, v: redactElementExpr(`$$${kv}.v`, fields, depth + 1) } },
            },
          },
        },
      ],
      default: expr,
    },
  };
}

/**
 * `base` (an object expression) with the collection at `segments` redacted, rebuilt level by level
 * with $mergeObjects so that field order is kept. Only called when every level exists (`pathExists`).
 */
function rebuildExpr(base: string, segments: readonly string[], fields: readonly string[], depth: number): Document {
  const [head, ...rest] = segments;
  const child = `${base}.${head}`;
  const value = rest.length === 0 ? redactCollectionExpr(child, fields, depth) : rebuildExpr(child, rest, fields, depth);
  return { $mergeObjects: [base, { [head!]: value }] };
}

/** True when `base` and every level down to the collection are objects, and the collection is an array or object. */
function pathExists(base: string, segments: readonly string[]): Document {
  const checks: Document[] = [isType(base, "object")];
  segments.forEach((_, i) => {
    const at = `${base}.${segments.slice(0, i + 1).join(".")}`;
    checks.push(i === segments.length - 1 ? { $in: [{ $type: at }, ["array", "object"]] } : isType(at, "object"));
  });
  return { $and: checks };
}

function redactDocExpr(base: string, segments: readonly string[], fields: readonly string[]): Document {
  return { $cond: [pathExists(base, segments), rebuildExpr(base, segments, fields, 0), base] };
}

// String tests on an updateDescription key, `$$u.k`.
const startsWith = (key: string, prefix: string) => ({ $eq: [{ $substrCP: [key, 0, [...prefix].length] }, prefix] });
const restAfter = (key: string, prefix: string) => ({ $substrCP: [key, [...prefix].length, { $strLenCP: key }] });

/**
 * Whether an updateDescription key (or removed path) is a private field of an element: `<path>.<element>.<field>…`.
 * `<element>` is an index or a key, and `<field>` the element's top-level field.
 */
function isPrivateElementKeyExpr(key: string, path: string, fields: readonly string[]): Document {
  const rest = { $split: [restAfter(key, `${path}.`), "."] };
  return {
    $and: [startsWith(key, `${path}.`), { $gte: [{ $size: rest }, 2] }, { $in: [{ $arrayElemAt: [rest, 1] }, fields] }],
  };
}

/** The new value of an updatedFields entry `{k, v}`: redacted when it holds elements or a whole collection. */
function redactUpdatedValueExpr(path: string, fields: readonly string[]): Document {
  const segments = path.split(".");
  const branches: Document[] = [
    { case: { $eq: ["$$u.k", path] }, then: redactCollectionExpr("$$u.v", fields, 0) },
    {
      case: { $and: [startsWith("$$u.k", `${path}.`), { $eq: [{ $size: { $split: [restAfter("$$u.k", `${path}.`), "."] } }, 1] }] },
      then: redactElementExpr("$$u.v", fields, 0),
    },
  ];
  // A key above the path (`data` for `data.nodes`): its value holds the collection further down.
  for (let i = 1; i < segments.length; i++) {
    const above = segments.slice(0, i).join(".");
    branches.push({ case: { $eq: ["$$u.k", above] }, then: redactDocExpr("$$u.v", segments.slice(i), fields) });
  }
  return { $switch: { branches, default: "$$u.v" } };
}

function elementStages(byPath: ReadonlyMap<string, readonly string[]>, collections: readonly string[]): Document[] {
  // Only the collections whose filters name entities: the others pass untouched (and cost MongoDB nothing more).
  const embedded = { $in: ["$ns.coll", [...collections]] };
  const images: Document = {};
  for (const prefix of ["fullDocument", "fullDocumentBeforeChange"]) {
    let expr: Document | string = `$${prefix}`;
    for (const [path, fields] of byPath) {
      // Nested $cond per path: each path's rebuild reads the previous path's result through $let.
      expr = { $let: { vars: { d: expr }, in: redactDocExpr("$$d", path.split("."), fields) } };
    }
    images[prefix] = { $cond: [{ $and: [embedded, isType(`$${prefix}`, "object")] }, expr, `$${prefix}`] };
  }
  // The first $set leaves a missing image missing ($$REMOVE), as non-update events have no updateDescription.
  for (const prefix of Object.keys(images)) {
    images[prefix] = { $cond: [isType(`$${prefix}`, "missing"), "$$REMOVE", images[prefix]] };
  }
  const paths = [...byPath];
  const keep = (key: string) => ({ $not: [{ $or: paths.map(([path, fields]) => isPrivateElementKeyExpr(key, path, fields)) }] });
  let value: Document | string = "$$u.v";
  for (const [path, fields] of byPath) value = { $let: { vars: { u: { k: "$$u.k", v: value } }, in: redactUpdatedValueExpr(path, fields) } };
  const redacted = {
    $cond: {
      if: embedded,
      then: {
        $mergeObjects: [
          "$updateDescription",
          {
            updatedFields: {
              $arrayToObject: {
                $map: {
                  input: { $filter: { input: { $objectToArray: "$updateDescription.updatedFields" }, as: "f", cond: keep("$$f.k") } },
                  as: "u",
                  in: { k: "$$u.k", v: value },
                },
              },
            },
            removedFields: { $filter: { input: "$updateDescription.removedFields", as: "r", cond: keep("$$r") } },
            truncatedArrays: { $filter: { input: "$updateDescription.truncatedArrays", as: "t", cond: keep("$$t.field") } },
            disambiguatedPaths: {
              $cond: {
                if: isType("$updateDescription.disambiguatedPaths", "object"),
                then: {
                  $arrayToObject: { $filter: { input: { $objectToArray: "$updateDescription.disambiguatedPaths" }, as: "d", cond: keep("$$d.k") } },
                },
                else: "$$REMOVE",
              },
            },
          },
        ],
      },
      else: "$updateDescription",
    },
  };
  const updateDescription = { $cond: { if: { $eq: ["$operationType", "update"] }, then: redacted, else: "$$REMOVE" } };
  return [{ $set: images }, { $set: { updateDescription } }];
}

/** Compiles validated filters. Throws `E_FILTER_INVALID` if two filters watch one collection. */
export function compileFilters(specs: readonly FilterSpec[]): CompiledFilters {
  if (specs.length === 0) throw new FlowsyncError("E_FILTER_INVALID", "no filters: nothing to watch");
  const byCollection = new Map<string, Rule>();
  for (const spec of specs) {
    const previous = byCollection.get(spec.collection);
    if (previous) {
      throw new FlowsyncError("E_FILTER_INVALID", `invalid filter ${spec.source}: collection '${spec.collection}' is already watched by ${previous.source}`);
    }
    byCollection.set(spec.collection, toRule(spec));
  }
  // An embedded kind is the whole of that kind in its flow (a replace-all event replaces them all),
  // so no other filter may produce the same entity.
  const entityOwner = new Map<string, string>();
  for (const spec of specs) {
    const kinds = [spec.entity, ...Object.values(spec.entities ?? {}).map((e) => e.entity)];
    for (const kind of kinds) {
      if (kind === undefined) continue;
      const owner = entityOwner.get(kind);
      const embedded = (s: FilterSpec) => Object.values(s.entities ?? {}).some((e) => e.entity === kind);
      if (owner !== undefined && (embedded(spec) || embedded(specs.find((s) => s.source === owner)!))) {
        throw new FlowsyncError(
          "E_FILTER_INVALID",
          `invalid filter ${spec.source}: entity '${kind}' is already produced by ${owner}, and embedded entities must have a kind of their own`,
        );
      }
      entityOwner.set(kind, spec.source);
    }
  }
  const collections = [...byCollection.keys()];
  const privateFields = [...new Set(specs.flatMap((spec) => spec.privateFields))].sort();
  const pipeline: Document[] = [matchStage(specs, collections)];
  if (privateFields.length > 0) {
    const prefixes = ["fullDocument", "fullDocumentBeforeChange", "updateDescription.updatedFields"];
    pipeline.push({ $unset: prefixes.flatMap((prefix) => privateFields.map((field) => `${prefix}.${field}`)) });
    pipeline.push(dottedKeysStage(privateFields));
  }
  const elementPrivate = new Map<string, string[]>();
  const embeddedCollections = new Set<string>();
  for (const spec of specs) {
    for (const [path, e] of Object.entries(spec.entities ?? {})) {
      if (e.privateFields.length === 0) continue;
      elementPrivate.set(path, [...new Set([...(elementPrivate.get(path) ?? []), ...e.privateFields])].sort());
      embeddedCollections.add(spec.collection);
    }
  }
  if (elementPrivate.size > 0) {
    pipeline.push(...elementStages(new Map([...elementPrivate].sort(([a], [b]) => (a < b ? -1 : 1))), [...embeddedCollections].sort()));
  }
  return Object.freeze({
    pipeline: deepFreeze(pipeline),
    byCollection,
    collections: Object.freeze(collections),
    privateFields: Object.freeze(privateFields),
  });
}

/** The `_id` values a flow id names with `routeBy: "_id"`: the string itself, and the ObjectId it spells, if any. */
export function idValues(flowId: string): unknown[] {
  return /^[0-9a-f]{24}$/.test(flowId) ? [flowId, ObjectId.createFromHexString(flowId)] : [flowId];
}

/**
 * An extra `$match` for a temporary catch-up stream that only one flow needs,
 * appended AFTER `compiled.pipeline`. It is an optimisation, not a guarantee:
 * changes without any image (a delete without pre-image, an update whose
 * document is gone) cannot be attributed server-side and pass, and so do
 * lifecycle events. The consumer must still check each mapped event's flowId.
 */
export function flowMatchStage(compiled: CompiledFilters, flowId: string): Document {
  const perCollection = [...compiled.byCollection.values()].map((rule) =>
    rule.routeBy === "_id"
      ? { "ns.coll": rule.collection, "documentKey._id": { $in: idValues(flowId) } }
      : {
          "ns.coll": rule.collection,
          $or: [
            { [`fullDocument.${rule.routeBy}`]: flowId },
            { [`fullDocumentBeforeChange.${rule.routeBy}`]: flowId },
            { fullDocument: null, fullDocumentBeforeChange: null },
          ],
        },
  );
  return { $match: { $or: [{ operationType: { $nin: [...OPERATIONS] } }, ...perCollection] } };
}

/**
 * The watcher's pipeline: the filters' pipeline whose first `$match` also lets through every
 * change of `collections` (flowsync's own, e.g. the presence collection: not document events,
 * the watcher's consumer routes them elsewhere). Catch-up streams keep `compiled.pipeline`.
 */
export function watchPipeline(compiled: CompiledFilters, collections: readonly string[]): readonly Document[] {
  if (collections.length === 0) return compiled.pipeline;
  const [first, ...rest] = compiled.pipeline;
  const match = (first as { $match: { $or: Document[] } }).$match;
  return deepFreeze([{ $match: { $or: [...match.$or, { "ns.coll": { $in: [...collections] } }] } }, ...rest]);
}
