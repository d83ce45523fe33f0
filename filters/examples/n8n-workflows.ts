// An n8n-style `workflows` collection: one document per workflow, as n8n exports it
// (`{name, nodes: [{id, name, type, position: [x, y], parameters, credentials}], connections, settings, staticData}`).
// Each node becomes a `node` entity; `connections` is an object keyed by the source node's NAME, so each of its
// properties is a `connection` entity whose id is that name (docs/filters.md, "Embedded entities").
// Node `credentials` (references to stored credentials) and the workflow's `staticData` and `pinData`
// (webhook state, pinned test data) never leave MongoDB.
// To use it: copy it into FILTERS_DIR instead of the shipped nodes/edges filters (a kind has one source), and
// keep pre/post images on the collection (mongo-init does) so every event is exact.
import { defineFilter } from "flowsync/filters";

export default defineFilter({
  collection: "workflows",
  event: "SYNC_CANVAS",
  entity: "workflow",
  routeBy: "_id",
  privateFields: ["staticData", "pinData"],
  entities: {
    nodes: { entity: "node", key: "id", privateFields: ["credentials"] },
    connections: { entity: "connection" },
  },
});
