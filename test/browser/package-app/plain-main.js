// The plain-JS page of the package proof: subscribeFlow + createFlowStore, no framework.
import { createFlowStore, subscribeFlow } from "flowsync-client";

const params = new URLSearchParams(location.search);
const store = createFlowStore();
const list = document.getElementById("nodes");
const status = document.getElementById("status");
store.subscribe((s) => {
  status.dataset.status = s.status;
  status.dataset.reason = s.error?.reason ?? "";
  status.textContent = s.error ? `${s.status}: ${s.error.message}` : s.status;
  list.replaceChildren(
    ...Object.values(s.nodes).map((n) => {
      const li = document.createElement("li");
      li.dataset.id = String(n._id);
      li.dataset.x = String(n.position?.x);
      li.dataset.y = String(n.position?.y);
      return li;
    }),
  );
});
subscribeFlow(params.get("server"), params.get("flow"), {}, { store, retry: { initialMs: 200, maxMs: 1000 } });
