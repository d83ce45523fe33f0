/**
 * Runtime validation of one filter definition (see define.ts for the format).
 *
 * Strict on purpose: an unknown key is an error (a typo such as `privatefields`
 * would otherwise silently leak the fields it meant to hide), and every
 * cross-reference inside one filter is checked here, before anything is compiled.
 */
import { z } from "zod";
import type { ZodType } from "zod";
import { FlowsyncError } from "../errors";
import { DOC_EVENT_TYPES, OPERATIONS } from "../events/schemas";

// MongoDB collection names: no `$`, no NUL, and system collections are not ours to watch.
const collectionName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[^$\u0000]+$/, "must not contain '$' or NUL")
  .refine((name) => !name.startsWith("system."), "system collections cannot be watched");

// Private fields are top-level names: that keeps the "everything under it" rule
// exact both in the pipeline and in the mapper (a key is private iff its first
// path segment is).
const privateFieldName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[^.$\u0000][^.\u0000]*$/, "must be a top-level field name (no '.', not starting with '$')");

const fieldPath = z
  .string()
  .min(1, "must not be empty")
  .max(200)
  .refine(
    (p) => p.split(".").every((seg) => seg.length > 0 && !seg.startsWith("$") && !seg.includes("\u0000")),
    "must be a field path: non-empty segments separated by '.', none starting with '$'",
  );

// Duck-typed rather than `instanceof`, so a schema built with another copy of zod still works.
const zodSchema = z.custom<ZodType>((v) => typeof v === "object" && v !== null && "_zod" in v && typeof (v as ZodType).safeParse === "function", {
  message: "must be a zod schema, e.g. z.looseObject({ flowId: z.string() })",
});

const plainObject = z.custom<Record<string, unknown>>(
  (v) => typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype,
  { message: "must be a plain object (a $match filter on the change event)" },
);

const elementSchema = z.strictObject({
  entity: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, "must be a short identifier such as 'node'"),
  key: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[^.$\u0000][^.\u0000]*$/, "must be a top-level field name of the element (no '.', not starting with '$')")
    .default("id"),
  privateFields: z
    .array(privateFieldName)
    .default([])
    .transform((fields) => [...new Set(fields)]),
});

const under = (path: string, prefix: string) => path === prefix || path.startsWith(`${prefix}.`);

export const filterSchema = z
  .strictObject({
    collection: collectionName,
    event: z.enum(DOC_EVENT_TYPES),
    entity: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, "must be a short identifier such as 'node'")
      .optional(),
    routeBy: fieldPath.default("flowId"),
    operations: z
      .array(z.enum(OPERATIONS))
      .min(1, "must list at least one operation")
      .default([...OPERATIONS])
      .transform((ops) => [...new Set(ops)]),
    privateFields: z
      .array(privateFieldName)
      .default([])
      .transform((fields) => [...new Set(fields)]),
    match: plainObject.optional(),
    document: zodSchema.optional(),
    /** Embedded canvas entities: field path → which kind its elements are (docs/filters.md). */
    entities: z.record(fieldPath, elementSchema).optional(),
  })
  .superRefine((filter, ctx) => {
    if (filter.event === "SYNC_CANVAS" && filter.entity === undefined) {
      ctx.addIssue({ code: "custom", path: ["entity"], message: "entity is required for SYNC_CANVAS (e.g. 'node')" });
    }
    if (filter.event !== "SYNC_CANVAS" && filter.entity !== undefined) {
      ctx.addIssue({ code: "custom", path: ["entity"], message: `entity only applies to SYNC_CANVAS, not ${filter.event}` });
    }
    const routeHead = filter.routeBy.split(".")[0];
    if (filter.entities !== undefined) checkEntities(filter as EntitiesFilter, ctx);
    filter.privateFields.forEach((field, i) => {
      if (field === "_id") {
        ctx.addIssue({ code: "custom", path: ["privateFields", i], message: "_id cannot be private: it is the event's id" });
      }
      if (field === routeHead) {
        ctx.addIssue({
          code: "custom",
          path: ["privateFields", i],
          message: `'${field}' cannot be private: events are routed by '${filter.routeBy}'`,
        });
      }
    });
  });

type EntitiesFilter = {
  event: string;
  entity?: string | undefined;
  routeBy: string;
  privateFields: string[];
  entities: Record<string, { entity: string; key: string; privateFields: string[] }>;
};

function checkEntities(filter: EntitiesFilter, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path: ["entities", ...path], message });
  if (filter.event !== "SYNC_CANVAS") issue([], `entities only apply to SYNC_CANVAS, not ${filter.event}`);
  const paths = Object.keys(filter.entities);
  if (paths.length === 0) issue([], "must name at least one field path (or leave entities out)");
  const kinds = new Map<string, string>();
  for (const path of paths) {
    const spec = filter.entities[path]!;
    const other = paths.find((p) => p !== path && (under(path, p) || under(p, path)));
    if (other !== undefined && under(path, other)) issue([path], `overlaps '${other}': one path cannot hold another's entities`);
    const head = path.split(".")[0]!;
    if (head === "_id") issue([path], "_id cannot hold entities");
    if (filter.privateFields.includes(head)) issue([path], `'${path}' is under the private field '${head}': its entities would never leave MongoDB`);
    if (under(filter.routeBy, path) || under(path, filter.routeBy)) issue([path], `overlaps the routing field '${filter.routeBy}'`);
    if (spec.privateFields.includes(spec.key)) issue([path, "privateFields"], `'${spec.key}' cannot be private: it is the elements' id`);
    if (spec.entity === filter.entity) issue([path, "entity"], `'${spec.entity}' is already the document's own entity`);
    const previous = kinds.get(spec.entity);
    if (previous !== undefined) issue([path, "entity"], `'${spec.entity}' is already the entity of '${previous}'`);
    kinds.set(spec.entity, path);
  }
}

/** A validated filter, defaults applied, plus the file it came from (for messages). */
export type FilterSpec = z.output<typeof filterSchema> & { readonly source: string };

/**
 * Validates one filter definition. Throws `E_FILTER_INVALID` naming `source`
 * and every problem found (zod's pretty format: one line per issue with its path).
 */
export function parseFilter(raw: unknown, source: string): FilterSpec {
  const result = filterSchema.safeParse(raw);
  if (!result.success) {
    throw new FlowsyncError("E_FILTER_INVALID", `invalid filter ${source}:\n${z.prettifyError(result.error)}`, {
      cause: result.error,
    });
  }
  return { ...result.data, source };
}
