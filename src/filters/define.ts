/**
 * The filter format: one module per watched collection in FILTERS_DIR.
 *
 *     // filters/nodes.ts
 *     import { z } from "zod";
 *     import { defineFilter } from "../src/filters/define";
 *     export default defineFilter({
 *       collection: "nodes",
 *       event: "SYNC_CANVAS",
 *       entity: "node",
 *       privateFields: ["secrets", "_internal"],
 *       document: z.looseObject({ flowId: z.string() }),
 *     });
 *
 * `defineFilter` only gives the object its type (editor completion, compile-time
 * checks); loadFilters validates it again at runtime, because `.json` filters
 * and plain `.js` modules get no help from the compiler.
 */
import type { ZodType } from "zod";
import type { DocEventType, Operation } from "../events/schemas";

export interface FilterDefinition {
  /** The collection to watch, in the watched database. One filter per collection. */
  collection: string;
  /** The event type its changes become. */
  event: DocEventType;
  /** Required for SYNC_CANVAS (`node`, `edge`, …), refused for the other event types. */
  entity?: string;
  /** Field (dotted path allowed) whose string value is the flowId. Default `flowId`. */
  routeBy?: string;
  /** Which changes pass. Default: all four. */
  operations?: readonly Operation[];
  /**
   * Top-level fields that must never leave MongoDB, with everything under them.
   * Removed inside the change-stream pipeline, for every watched collection (see compile.ts).
   */
  privateFields?: readonly string[];
  /** An extra `$match` on the change event (e.g. `{ "fullDocument.kind": "llm" }`), ANDed with the rest. */
  match?: Record<string, unknown>;
  /**
   * Schema of the (redacted, plain-JSON) document. It validates only: the event
   * carries the document as stored, so use `z.looseObject` (unknown fields are
   * fine) and expect no defaults/transforms to apply. A document that fails it
   * is skipped and counted.
   */
  document?: ZodType;
  /**
   * A flow stored as one document: field paths (`nodes`, `graph.nodes`) whose value is an
   * array of canvas entities, or an object keyed by their id. Each changed element becomes
   * its own SYNC_CANVAS event (docs/filters.md, "Embedded entities").
   */
  entities?: Readonly<Record<string, EntitiesDefinition>>;
}

export interface EntitiesDefinition {
  /** The `entity` of the elements' events (`node`, `edge`). */
  entity: string;
  /** The element field that is its id. Default `id`. Ignored for an object keyed by id (the property name is the id). */
  key?: string;
  /** Top-level fields of each element that must never leave MongoDB. */
  privateFields?: readonly string[];
}

export function defineFilter<const T extends FilterDefinition>(filter: T): T {
  return filter;
}
