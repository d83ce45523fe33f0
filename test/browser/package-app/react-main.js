// The React app of the package proof (test/browser/package.test.ts): React Flow
// rendering a flow from flowsync-client/react, installed from the packed tarball.
// Plain JS (createElement), so the build needs no JSX plugin.
import { createElement as h, StrictMode, useCallback } from "react";
import { createRoot } from "react-dom/client";
import { ReactFlow } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useFlow, useFlowStore } from "flowsync-client/react";

const params = new URLSearchParams(location.search);
const options = { baseUrl: params.get("server"), transport: "eventsource", retry: { initialMs: 200, maxMs: 1000 } };
const flowId = params.get("flow");

function Canvas() {
  const flow = useFlow(flowId, options);
  const store = useFlowStore(flowId, options);
  // The test moves a node the way a drag would: optimistic first, the server's value later.
  window.moveOptimistic = useCallback(
    (id, x, y) => {
      window.lastMove = store.optimistic("node", id, { position: { x, y } });
    },
    [store],
  );
  window.moveActive = () => window.lastMove?.active ?? null;
  const nodes = Object.values(flow.nodes).map((n) => ({
    id: String(n._id),
    position: n.position ?? { x: 0, y: 0 },
    data: { label: String(n.label ?? n._id) },
  }));
  const edges = Object.values(flow.edges).map((e) => ({ id: String(e._id), source: String(e.source), target: String(e.target) }));
  return h(
    "div",
    { style: { width: "1000px", height: "700px" } },
    h("p", { id: "status", "data-status": flow.status }, flow.status),
    h(ReactFlow, { nodes, edges, nodesDraggable: false, minZoom: 0.01, defaultViewport: { x: 0, y: 0, zoom: 0.1 } }),
  );
}

createRoot(document.getElementById("root")).render(h(StrictMode, null, h(Canvas)));
