// A strict TypeScript consumer of the installed package (test/browser/package.test.ts compiles it with
// NodeNext, Node16 and Bundler resolution, exactOptionalPropertyTypes, noUncheckedIndexedAccess, skipLibCheck off).
import { createFlowStore, subscribeFlow, FlowsyncClientError, type FlowState, type SubscribeOptions } from "flowsync-client";
import { useFlow, createFlowRegistry } from "flowsync-client/react";
import { flow$, events$ } from "flowsync-client/rxjs";
import { parseFlowEvent, type FlowEvent } from "flowsync-client/wire";

const lastEventId: string | undefined = undefined;
const options: SubscribeOptions = { lastEventId, logs: true, retry: { initialMs: 10 } };
const store = createFlowStore({ maxLogChars: 100 });
const sub = subscribeFlow("http://x", "f", { onError: (e) => e instanceof FlowsyncClientError && e.reason }, { ...options, store });
const state: FlowState = store.getState();
const position = state.nodes["a"]?.position;
const event: FlowEvent | undefined = parseFlowEvent("RESET", "{}");
export const used = [sub, position, event, useFlow, createFlowRegistry, flow$, events$];
