// Plain Node 20, no loader: the installed package and its subpaths import, and talk to a running flowsync.
import { createFlowStore, subscribeFlow, isEventData, FlowsyncClientError } from "flowsync-client";
import { parseFlowEvent } from "flowsync-client/wire";

const [server, flowId] = process.argv.slice(2);
if (typeof isEventData !== "function" || typeof parseFlowEvent !== "function" || typeof FlowsyncClientError !== "function") process.exit(2);
const store = createFlowStore();
const sub = subscribeFlow(server, flowId, {}, { store, transport: "fetch" });
const deadline = Date.now() + 20_000;
while (store.getState().status !== "open" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
const { status, nodes } = store.getState();
sub.close();
console.log(JSON.stringify({ status, nodes: Object.keys(nodes).sort() }));
