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
 * Caveat (docs/filters.md): the redaction is the UNION of all filters' private fields,
 * applied to every watched collection, because one stream serves them all. A
 * field private in one collection is therefore also removed from the others.
 * The mapper re-applies each collection's own list as a second line of defence.
 *
 * The change event's `_id` (the resume token) is never touched: the driver
 * rejects events without it, and it is our cursor.
 */
import type { Document } from "bson";
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
  const collections = [...byCollection.keys()];
  const privateFields = [...new Set(specs.flatMap((spec) => spec.privateFields))].sort();
  const pipeline: Document[] = [matchStage(specs, collections)];
  if (privateFields.length > 0) {
    const prefixes = ["fullDocument", "fullDocumentBeforeChange", "updateDescription.updatedFields"];
    pipeline.push({ $unset: prefixes.flatMap((prefix) => privateFields.map((field) => `${prefix}.${field}`)) });
    pipeline.push(dottedKeysStage(privateFields));
  }
  return Object.freeze({
    pipeline: deepFreeze(pipeline),
    byCollection,
    collections: Object.freeze(collections),
    privateFields: Object.freeze(privateFields),
  });
}

/**
 * An extra `$match` for a temporary catch-up stream that only one flow needs,
 * appended AFTER `compiled.pipeline`. It is an optimisation, not a guarantee:
 * changes without any image (a delete without pre-image, an update whose
 * document is gone) cannot be attributed server-side and pass, and so do
 * lifecycle events. The consumer must still check each mapped event's flowId.
 */
export function flowMatchStage(compiled: CompiledFilters, flowId: string): Document {
  const perCollection = [...compiled.byCollection.values()].map((rule) => ({
    "ns.coll": rule.collection,
    $or: [
      { [`fullDocument.${rule.routeBy}`]: flowId },
      { [`fullDocumentBeforeChange.${rule.routeBy}`]: flowId },
      { fullDocument: null, fullDocumentBeforeChange: null },
    ],
  }));
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
