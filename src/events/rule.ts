/**
 * What the mapper needs to know about one watched collection. Defined here, by
 * its consumer, so that events/ depends on no filter code: filters/compile.ts
 * builds these from the filter files.
 */
import type { ZodType } from "zod";
import type { DocEventType, Operation } from "./schemas";

/** One collection of canvas entities embedded in a document (filter `entities`). */
export interface ElementRule {
  /** The field path, as in the filter (`nodes`, `graph.nodes`). */
  readonly path: string;
  readonly segments: readonly string[];
  /** The `entity` of its events (`node`). */
  readonly entity: string;
  /** The element field that is its id (default `id`); ignored for an object keyed by id. */
  readonly key: string;
  /** Top-level element fields that never leave MongoDB. */
  readonly privateFields: ReadonlySet<string>;
}

export interface Rule {
  readonly collection: string;
  readonly event: DocEventType;
  readonly entity: string | undefined;
  readonly routeBy: string;
  readonly routePath: readonly string[];
  readonly operations: ReadonlySet<Operation>;
  readonly privateFields: ReadonlySet<string>;
  readonly schema: ZodType | undefined;
  /** Embedded entity collections, in filter order; empty for a one-document-per-entity collection. */
  readonly elements: readonly ElementRule[];
  /** The filter file, for log messages. */
  readonly source: string;
}
