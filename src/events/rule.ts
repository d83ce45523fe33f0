/**
 * What the mapper needs to know about one watched collection. Defined here, by
 * its consumer, so that events/ depends on no filter code: filters/compile.ts
 * builds these from the filter files.
 */
import type { ZodType } from "zod";
import type { DocEventType, Operation } from "./schemas";

export interface Rule {
  readonly collection: string;
  readonly event: DocEventType;
  readonly entity: string | undefined;
  readonly routeBy: string;
  readonly routePath: readonly string[];
  readonly operations: ReadonlySet<Operation>;
  readonly privateFields: ReadonlySet<string>;
  readonly schema: ZodType | undefined;
  /** The filter file, for log messages. */
  readonly source: string;
}
