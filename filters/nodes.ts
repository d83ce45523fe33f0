// Canvas nodes → SYNC_CANVAS events with entity "node".
// The schema names the fields the canvas relies on; other fields pass through.
import { z } from "zod";
import { defineFilter } from "flowsync/filters";

export default defineFilter({
  collection: "nodes",
  event: "SYNC_CANVAS",
  entity: "node",
  routeBy: "flowId",
  operations: ["insert", "update", "replace", "delete"],
  privateFields: ["secrets", "_internal"],
  document: z.looseObject({
    flowId: z.string(),
    type: z.string().optional(),
    position: z.looseObject({ x: z.number(), y: z.number() }).optional(),
    data: z.record(z.string(), z.unknown()).optional(),
  }),
});
