// Execution state of a run (per-node job status, progress, results) → EXECUTION_UPDATE.
import { z } from "zod";
import { defineFilter } from "flowsync/filters";

export default defineFilter({
  collection: "flow_executions",
  event: "EXECUTION_UPDATE",
  routeBy: "flowId",
  operations: ["insert", "update", "replace", "delete"],
  privateFields: ["secrets", "_internal"],
  document: z.looseObject({
    flowId: z.string(),
    status: z.string().optional(),
    progress: z.number().min(0).max(100).optional(),
  }),
});
