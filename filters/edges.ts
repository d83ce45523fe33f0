// Canvas edges → SYNC_CANVAS events with entity "edge".
import { z } from "zod";
import { defineFilter } from "flowsync/filters";

export default defineFilter({
  collection: "edges",
  event: "SYNC_CANVAS",
  entity: "edge",
  routeBy: "flowId",
  operations: ["insert", "update", "replace", "delete"],
  privateFields: ["secrets", "_internal"],
  document: z.looseObject({
    flowId: z.string(),
    // Node ids; an ObjectId reference arrives as its hex string.
    source: z.string().optional(),
    target: z.string().optional(),
  }),
});
