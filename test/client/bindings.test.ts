/**
 * The React and RxJS bindings against a scripted fetch (no server): one
 * connection per flow however many subscribers, closed by the last one; SSR
 * opens nothing; unrecoverable errors end the observables.
 */
import { createElement } from "react";
import { renderToString } from "react-dom/server";
import { firstValueFrom, filter } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import { createFlowRegistry, FlowsyncProvider, useFlow } from "flowsync-client/react";
import { events$, flow$ } from "flowsync-client/rxjs";
import type { FetchLike, FlowState, SnapshotData } from "flowsync-client";

const snapshot: SnapshotData = { flowId: "f", cursor: "S1", clusterTime: "1.1", canvas: { node: [{ _id: "a", flowId: "f" }] }, executions: [] };

/** Counts requests; snapshot answers `status` (200: the snapshot); streams stay open until aborted. */
function fakeFetch(status = 200) {
  const log = { snapshots: 0, streams: 0, open: 0 };
  const fetch: FetchLike = async (url, init) => {
    if (url.includes("/snapshot")) {
      log.snapshots++;
      return status === 200 ? Response.json(snapshot) : Response.json({ error: { code: "E_FORBIDDEN", message: "no" } }, { status });
    }
    log.streams++;
    log.open++;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        init.signal.addEventListener("abort", () => {
          log.open--;
          c.error(new Error("aborted"));
        });
      },
    });
    return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
  };
  return { fetch, log };
}

const until = async (check: () => boolean) => {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
};

const cleanup: Array<() => void> = [];
afterEach(() => cleanup.splice(0).forEach((f) => f()));

/** Streams that send one PRESENCE frame (no id:) listing who asked: `?presence=0` streams are not on it. */
function presenceFetch() {
  const urls: string[] = [];
  const fetch: FetchLike = async (url, init) => {
    if (url.includes("/snapshot")) return Response.json(snapshot);
    urls.push(url);
    const users = [{ id: "alice", name: "Alice", connections: 1 }];
    const frame = `event: PRESENCE\ndata: ${JSON.stringify({ flowId: "f", users, joined: [], left: [] })}\n\n`;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(frame));
        init.signal.addEventListener("abort", () => c.error(new Error("aborted")));
      },
    });
    return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
  };
  return { fetch, urls };
}

describe("presence in the bindings", () => {
  it("useFlow's shared store and flow$ states carry the PRESENCE list; presence: false asks for ?presence=0 on a connection of its own", async () => {
    const f = presenceFetch();
    const registry = createFlowRegistry();
    const options = { baseUrl: "http://x", fetch: f.fetch, transport: "fetch" as const };
    const release = registry.acquire("f", options);
    cleanup.push(release);
    await until(() => registry.store("f", options).getState().presence.length === 1);
    expect(registry.store("f", options).getState().presence).toEqual([{ id: "alice", name: "Alice", connections: 1 }]);
    const unlisted = { ...options, presence: false };
    cleanup.push(registry.acquire("f", unlisted));
    expect(registry.store("f", unlisted)).not.toBe(registry.store("f", options));
    await until(() => f.urls.length === 2);
    expect(f.urls[0]).not.toContain("presence=0");
    expect(f.urls[1]).toContain("?presence=0");

    const state = await firstValueFrom(flow$("f", options).pipe(filter((s) => s.presence.length > 0)));
    expect(state.presence.map((u) => u.id)).toEqual(["alice"]);
  });
});

describe("flowsync-client/react", () => {
  it("renders on the server without connecting: the empty state, status connecting", () => {
    const f = fakeFetch();
    const seen: FlowState[] = [];
    function Canvas() {
      const state = useFlow("f", { baseUrl: "http://x", fetch: f.fetch, transport: "fetch" });
      seen.push(state);
      return createElement("p", null, `${Object.keys(state.nodes).length} nodes, ${state.status}`);
    }
    const html = renderToString(createElement(FlowsyncProvider, { registry: createFlowRegistry() }, createElement(Canvas)));
    expect(html).toBe("<p>0 nodes, connecting</p>");
    expect(seen[0]?.status).toBe("connecting");
    expect(f.log).toEqual({ snapshots: 0, streams: 0, open: 0 });
  });

  it("the registry shares one connection per flow, and closes it a tick after the last release", async () => {
    const f = fakeFetch();
    const registry = createFlowRegistry();
    const options = { baseUrl: "http://x", fetch: f.fetch, transport: "fetch" as const };
    const a = registry.acquire("f", options);
    const b = registry.acquire("f", options);
    await until(() => f.log.open === 1);
    expect(registry.store("f", options).getState().nodes.a).toBeDefined();
    a();
    a(); // a second release of the same lease counts once
    b();
    // StrictMode: released and acquired again in the same tick: the connection stays.
    const c = registry.acquire("f", options);
    await new Promise((r) => setTimeout(r, 20));
    expect(f.log).toMatchObject({ snapshots: 1, streams: 1, open: 1 });
    c();
    await until(() => f.log.open === 0);
    expect(f.log.streams).toBe(1);
    // Another flow or other options: another connection.
    const d = registry.acquire("g", options);
    const e = registry.acquire("f", { ...options, logs: true });
    await until(() => f.log.open === 2);
    d();
    e();
    await until(() => f.log.open === 0);
  });
});

describe("flowsync-client/rxjs", () => {
  it("flow$ multicasts one connection with the latest state replayed; the last unsubscribe closes it", async () => {
    const f = fakeFetch();
    const state$ = flow$("f", { baseUrl: "http://x", fetch: f.fetch });
    const one: FlowState[] = [];
    const s1 = state$.subscribe((s) => one.push(s));
    await until(() => f.log.open === 1);
    const late = await firstValueFrom(state$);
    expect(late.nodes.a).toEqual({ _id: "a", flowId: "f" });
    expect(late.status).toBe("open");
    expect(one[0]?.status).toBe("connecting");
    expect(f.log).toMatchObject({ snapshots: 1, streams: 1 });
    s1.unsubscribe();
    await until(() => f.log.open === 0);
  });

  it("events$ carries the snapshot it fetched; an unrecoverable error (403) ends both observables", async () => {
    const ok = fakeFetch();
    const first = await firstValueFrom(events$("f", { baseUrl: "http://x", fetch: ok.fetch }).pipe(filter((e) => e.type === "SNAPSHOT")));
    expect(first).toEqual({ type: "SNAPSHOT", data: snapshot });
    await until(() => ok.log.open === 0);

    const denied = fakeFetch(403);
    const errors = await Promise.all([
      firstValueFrom(flow$("f", { baseUrl: "http://x", fetch: denied.fetch }).pipe(filter(() => false))).catch((e: unknown) => e),
      firstValueFrom(events$("f", { baseUrl: "http://x", fetch: denied.fetch })).catch((e: unknown) => e),
    ]);
    for (const err of errors) expect(err).toMatchObject({ name: "FlowsyncClientError", reason: "forbidden", status: 403 });
  });
});
