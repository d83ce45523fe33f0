// Partial output chunks of a running node (e.g. LLM tokens) → LOG_STREAM.
import { z } from "zod";
import { defineFilter } from "flowsync/filters";

export default defineFilter({
  collection: "flow_logs",
  event: "LOG_STREAM",
  routeBy: "flowId",
  operations: ["insert", "update", "replace", "delete"],
  privateFields: ["secrets", "_internal"],
  document: z.looseObject({
    flowId: z.string(),
    nodeId: z.string().optional(),
  }),
});
