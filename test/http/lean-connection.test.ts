/**
 * What an open event stream keeps once its handshake is done: its socket, response,
 * queue and subscription, and nothing of Koa's request handling. A stream lives as
 * long as its subscriber, so a Koa context kept with it (Koa's `onFinished`
 * listener holds one for every request it handles) is paid per idle subscriber.
 *
 * Deterministic: every context the app makes is watched through a WeakRef, and the
 * test forces full collections (no timing, no sizes); the streams are then shown to
 * be alive and delivering.
 */
import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import Koa from "koa";
import { describe, expect, it } from "vitest";
import { subscribeUrl, useFlowsync } from "../support/flowsync";
import { SseClient } from "../support/sse-client";

v8.setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const ORIGIN = "https://app.example";
const t = useFlowsync("lean", { CORS_ORIGINS: ORIGIN });

/** Watches the contexts Koa makes for requests whose URL contains `mark`, without keeping them alive. */
function watchContexts(mark: string): { refs: WeakRef<object>[]; restore: () => void } {
  const refs: WeakRef<object>[] = [];
  const original = Koa.prototype.createContext;
  Koa.prototype.createContext = function (this: Koa, req, res) {
    const ctx = original.call(this, req, res);
    if (req.url?.includes(mark)) refs.push(new WeakRef(ctx));
    return ctx;
  } as typeof original;
  return { refs, restore: () => void (Koa.prototype.createContext = original) };
}

/** How many of `refs` still reach their context after full collections (WeakRefs clear between jobs). */
async function alive(refs: readonly WeakRef<object>[]): Promise<number> {
  for (let k = 0; k < 3; k++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return refs.filter((r) => r.deref() !== undefined).length;
}

describe("a connection after the SSE handshake", () => {
  it("keeps no Koa context, whatever the request asked for; the streams stay open and deliver", async () => {
    const watched = watchContexts("/subscribe/lean-");
    const clients: SseClient[] = [];
    try {
      const open = (flowId: string, query = "", init: ConstructorParameters<typeof SseClient>[1] = {}) => {
        const c = new SseClient(subscribeUrl(t.fs, flowId, query), init);
        clients.push(c);
        return c;
      };
      open("lean-a");
      open("lean-a", "?types=SYNC_CANVAS", { headers: { Origin: ORIGIN } });
      open("lean-a", "", { lastEventId: "not-a-cursor" }); // RESET first
      open("lean-a", "?snapshot=1"); // a SNAPSHOT frame first
      open("lean-b", "?presence=0");
      for (const c of clients) await c.opened();
      expect(clients.map((c) => c.status)).toEqual([200, 200, 200, 200, 200]);
      expect(clients[1]!.headers?.get("access-control-allow-origin")).toBe(ORIGIN);
      expect(watched.refs.length, "contexts made for the streams").toBe(clients.length);

      expect(await alive(watched.refs), "Koa contexts still reachable from open streams").toBe(0);

      await t.db.collection("nodes").insertMany([
        { flowId: "lean-a", type: "llm" },
        { flowId: "lean-b", type: "llm" },
      ]);
      for (const c of clients) await c.until((x) => x.events().some((e) => e.type === "SYNC_CANVAS"), 10_000, "an event after the collection");
    } finally {
      watched.restore();
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it("(the check can fail) a stream answered through Koa's own handler keeps its context", async () => {
    // A trailing slash is another spelling of the route: the router takes it, Koa's handleRequest handles it.
    const watched = watchContexts("/subscribe/lean-koa");
    const c = new SseClient(`${subscribeUrl(t.fs, "lean-koa")}/`);
    try {
      await c.opened();
      expect(c.status).toBe(200);
      expect(await alive(watched.refs)).toBe(1);
    } finally {
      watched.restore();
      await c.close();
    }
  });
});
