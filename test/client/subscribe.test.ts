/**
 * subscribeFlow against scripted transports (no server): ordering of snapshot,
 * subscribe and resume; dedup; RESET; fatal errors; transport choice.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  createFlowStore,
  FlowsyncClientError,
  subscribeFlow,
  type ConnectionState,
  type EventSourceLike,
  type FetchLike,
  type SnapshotData,
} from "flowsync-client";

const enc = new TextEncoder();
const snapshot = (cursor: string, nodes: Array<Record<string, unknown>> = []): SnapshotData => ({
  flowId: "f",
  cursor,
  clusterTime: "1.1",
  canvas: { node: nodes },
  executions: [],
});
const frame = (id: string, type: string, data: unknown) => `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
const nodeInsert = (id: string) => ({ flowId: "f", op: "insert", id, entity: "node", clusterTime: "1.2", doc: { _id: id, flowId: "f" } });

interface Call {
  url: string;
  headers: Record<string, string>;
  stream?: ReadableStreamDefaultController<Uint8Array>;
}

/** A fetch whose snapshot answers come from `snapshots` and whose streams the test writes into. */
function fakeFetch(snapshots: Array<SnapshotData | number>) {
  const calls: Call[] = [];
  const waiters: Array<() => void> = [];
  const fetch: FetchLike = async (url, init) => {
    const call: Call = { url, headers: init.headers };
    calls.push(call);
    for (const w of waiters.splice(0)) w();
    if (url.includes("/snapshot")) {
      const next = snapshots.shift() ?? 500;
      if (typeof next === "number") return new Response(JSON.stringify({ error: { code: "E_X", message: "nope" } }), { status: next });
      return Response.json(next);
    }
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (call.stream = c) });
    init.signal.addEventListener("abort", () => {
      try {
        call.stream!.error(new Error("aborted"));
      } catch {
        // already closed
      }
    });
    return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
  };
  const next = async (n: number) => {
    while (calls.length < n) await new Promise<void>((r) => waiters.push(r));
    await tick();
    return calls[n - 1] as Call;
  };
  return { fetch, calls, next };
}

const tick = () => new Promise((r) => setTimeout(r, 5));
const write = (c: Call, text: string) => c.stream!.enqueue(enc.encode(text));

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

describe("subscribeFlow (fetch reader)", () => {
  it("fetches the snapshot, subscribes from its cursor, applies typed events once each", async () => {
    const f = fakeFetch([snapshot("S1", [{ _id: "a", flowId: "f" }])]);
    const store = createFlowStore();
    const seen: string[] = [];
    const states: ConnectionState[] = [];
    const errors: string[] = [];
    const sub = subscribeFlow(
      "http://x/",
      "f",
      {
        onSnapshot: (s, m) => seen.push(`snapshot ${s.cursor} ${m.reason}`),
        onCanvas: (d, m) => seen.push(`${d.op} ${d.id} ${d.entity} ${m.cursor}`),
        onState: (s) => states.push(s),
        onError: (e) => errors.push(e.message),
      },
      { fetch: f.fetch, store, headers: { "X-A": "1" } },
    );
    cleanup.push(() => sub.close());
    expect(sub.transport).toBe("fetch");
    const snap = await f.next(1);
    expect(snap.url).toBe("http://x/api/creative-flowboard/flows/f/snapshot");
    const stream = await f.next(2);
    expect(stream.url).toBe("http://x/api/creative-flowboard/subscribe/f");
    expect(stream.headers).toMatchObject({ "Last-Event-ID": "S1", "X-A": "1", Accept: "text/event-stream" });
    write(stream, `retry: 10\n: hi\n\n${frame("c1", "SYNC_CANVAS", nodeInsert("b"))}${frame("c1", "SYNC_CANVAS", nodeInsert("b"))}`);
    write(stream, frame("c2", "SYNC_CANVAS", { flowId: "f", op: "bogus" }));
    await tick();
    expect(seen).toEqual(["snapshot S1 initial", "insert b node c1"]);
    expect(Object.keys(store.getState().nodes)).toEqual(["a", "b"]);
    expect(sub.stats).toMatchObject({ events: 1, duplicates: 1, invalid: 1, snapshots: 1 });
    expect(errors).toEqual([expect.stringContaining("invalid SYNC_CANVAS event skipped")]);
    expect(states).toEqual(["open"]);
    expect(sub.state).toBe("open");
    expect(sub.lastEventId).toBe("c2");
  });

  it("reconnects with the last id after the server's retry delay, calling getToken each time", async () => {
    const f = fakeFetch([]);
    let token = 0;
    const states: ConnectionState[] = [];
    const sub = subscribeFlow(
      "http://x",
      "f/1",
      { onState: (s) => states.push(s) },
      { fetch: f.fetch, lastEventId: "L0", getToken: async () => `t${++token}`, types: ["SYNC_CANVAS", "LOG_STREAM"], presence: false },
    );
    cleanup.push(() => sub.close());
    const first = await f.next(1);
    expect(first.url).toBe("http://x/api/creative-flowboard/subscribe/f%2F1?types=SYNC_CANVAS,LOG_STREAM&presence=0");
    expect(first.headers).toMatchObject({ "Last-Event-ID": "L0", Authorization: "Bearer t1" });
    write(first, `retry: 20\n\n${frame("c1", "SYNC_CANVAS", nodeInsert("b"))}`);
    await tick();
    first.stream!.close();
    const second = await f.next(2);
    expect(second.headers).toMatchObject({ "Last-Event-ID": "c1", Authorization: "Bearer t2" });
    expect(states).toEqual(["open", "reconnecting", "open"]);
    expect(sub.stats.reconnects).toBe(1);
    // On demand: drop and resume.
    sub.reconnect(0);
    const third = await f.next(3);
    expect(third.headers["Last-Event-ID"]).toBe("c1");
  });

  it("on RESET: drops the stream, refetches the snapshot, resumes from its cursor", async () => {
    const f = fakeFetch([snapshot("S1", [{ _id: "a" }]), 503, snapshot("S2", [{ _id: "z" }])]);
    const store = createFlowStore();
    const log: string[] = [];
    const sub = subscribeFlow(
      "http://x",
      "f",
      {
        onReset: (d) => log.push(`reset ${d.reason}`),
        onSnapshot: (s, m) => log.push(`snapshot ${s.cursor} ${m.reason}`),
        onCanvas: (d) => log.push(`canvas ${d.id}`),
        onState: (s) => log.push(s),
        onError: (e) => log.push(`error ${e.message}`),
      },
      { fetch: f.fetch, store, retry: { initialMs: 5 } },
    );
    cleanup.push(() => sub.close());
    const stream = await f.next(2);
    write(stream, frame("r1", "RESET", { flowId: "f", reason: "history-lost" }) + frame("c9", "SYNC_CANVAS", nodeInsert("late")));
    const after = await f.next(5);
    write(after, ": hi\n\n");
    await tick();
    expect(f.calls.map((c) => c.url.replace("http://x/api/creative-flowboard", ""))).toEqual([
      "/flows/f/snapshot",
      "/subscribe/f",
      "/flows/f/snapshot",
      "/flows/f/snapshot",
      "/subscribe/f",
    ]);
    expect(after.headers["Last-Event-ID"]).toBe("S2");
    expect(log).toEqual([
      "snapshot S1 initial",
      "open",
      "reset history-lost",
      "resyncing",
      // Retrying, with the reason the app can show.
      "resyncing",
      expect.stringMatching(/^error snapshot: HTTP 503 E_X nope/),
      "snapshot S2 reset",
      "open",
    ]);
    expect(Object.keys(store.getState().nodes)).toEqual(["z"]);
    expect(sub.stats.resets).toBe(1);
  });

  it("a 4xx that a retry cannot fix closes the subscription with the error", async () => {
    const f = fakeFetch([404]);
    let closedWith: Error | undefined;
    const sub = subscribeFlow("http://x", "f", { onState: (s, i) => s === "closed" && (closedWith = i.error), onError: () => {} }, { fetch: f.fetch });
    await f.next(1);
    await tick();
    expect(sub.state).toBe("closed");
    expect(closedWith?.message).toMatch(/HTTP 404/);
    expect(closedWith).toBeInstanceOf(FlowsyncClientError);
    expect(closedWith).toMatchObject({ reason: "rejected", status: 404, code: "E_X" });
    await new Promise((r) => setTimeout(r, 50));
    expect(f.calls).toHaveLength(1);
  });

  it("a connection that cannot be made shows in the store with a reason: network/CORS and 401 retry, 403 closes", async () => {
    const outcomes: Array<() => Response> = [
      () => {
        throw new TypeError("Failed to fetch"); // what a browser says for offline, refused and CORS alike
      },
      () => Response.json({ error: { code: "E_AUTH_REQUIRED", message: "token required" } }, { status: 401 }),
      () => Response.json({ error: { code: "E_FORBIDDEN", message: "not yours" } }, { status: 403 }),
    ];
    const store = createFlowStore();
    const seen: Array<[string, string | undefined]> = [];
    store.subscribe((s) => seen.push([s.status, (s.error as FlowsyncClientError | undefined)?.reason]));
    const fetch: FetchLike = async () => outcomes.shift()!();
    const sub = subscribeFlow("http://x", "f", { onError: () => {} }, { fetch, store, retry: { initialMs: 1, maxMs: 2 } });
    cleanup.push(() => sub.close());
    while (sub.state !== "closed") await tick();
    expect(seen).toEqual([
      ["connecting", "network"],
      ["connecting", "unauthorized"],
      ["closed", "forbidden"],
    ]);
    expect(store.getState().error).toMatchObject({ status: 403, code: "E_FORBIDDEN" });
  });

  it("close() stops everything; a handler that throws does not break the stream", async () => {
    const f = fakeFetch([]);
    const errors: string[] = [];
    let n = 0;
    const sub = subscribeFlow(
      "http://x",
      "f",
      {
        onCanvas: () => {
          n++;
          throw new Error("app bug");
        },
        onError: (e) => errors.push(e.message),
      },
      { fetch: f.fetch, snapshot: false },
    );
    const s = await f.next(1);
    write(s, frame("c1", "SYNC_CANVAS", nodeInsert("a")) + frame("c2", "SYNC_CANVAS", nodeInsert("b")));
    await tick();
    expect(n).toBe(2);
    expect(errors).toEqual(["app bug", "app bug"]);
    sub.close();
    expect(sub.state).toBe("closed");
    await new Promise((r) => setTimeout(r, 50));
    expect(f.calls).toHaveLength(1);
  });

  it("refuses an invalid flowId and impossible transport choices", () => {
    expect(() => subscribeFlow("http://x", "", {})).toThrow(/invalid flowId/);
    expect(() => subscribeFlow("http://x", "", {})).toThrow(expect.objectContaining({ reason: "usage" }));
    expect(() => subscribeFlow("http://x", "f", {}, { transport: "eventsource", EventSource: FakeES, headers: { a: "b" } })).toThrow(/cannot send headers/);
  });
});

class FakeES implements EventSourceLike {
  static all: FakeES[] = [];
  readyState = 0;
  onopen: ((e: unknown) => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;
  listeners = new Map<string, (e: { data: string; lastEventId: string; type: string }) => void>();
  closed = false;
  constructor(readonly url: string) {
    FakeES.all.push(this);
  }
  addEventListener(type: string, l: (e: { data: string; lastEventId: string; type: string }) => void) {
    this.listeners.set(type, l);
  }
  close() {
    this.closed = true;
    this.readyState = 2;
  }
  emit(type: string, id: string, data: unknown) {
    this.listeners.get(type)?.({ type, lastEventId: id, data: JSON.stringify(data) });
  }
}

describe("subscribeFlow (EventSource)", () => {
  it("uses EventSource when there is one and no headers; reopens with ?lastEventId= when it gives up", async () => {
    FakeES.all = [];
    const f = fakeFetch([snapshot("S1")]);
    const states: ConnectionState[] = [];
    const sub = subscribeFlow(
      "",
      "f",
      { onState: (s) => states.push(s) },
      { fetch: f.fetch, EventSource: FakeES, retry: { initialMs: 5 }, types: ["SYNC_CANVAS"], presence: false },
    );
    cleanup.push(() => sub.close());
    expect(sub.transport).toBe("eventsource");
    while (FakeES.all.length < 1) await tick();
    const es = FakeES.all[0]!;
    expect(es.url).toBe("/api/creative-flowboard/subscribe/f?types=SYNC_CANVAS&presence=0&lastEventId=S1");
    es.readyState = 1;
    es.onopen?.({});
    es.emit("SYNC_CANVAS", "c1", nodeInsert("a"));
    es.readyState = 0;
    es.onerror?.({}); // the browser reconnects by itself
    es.onopen?.({});
    es.emit("SYNC_CANVAS", "c1", nodeInsert("a")); // a repeat is dropped
    es.readyState = 2;
    es.onerror?.({}); // the browser gave up
    while (FakeES.all.length < 2) await tick();
    expect(FakeES.all[1]!.url).toBe("/api/creative-flowboard/subscribe/f?types=SYNC_CANVAS&presence=0&lastEventId=c1");
    expect(states).toEqual(["open", "reconnecting", "open", "reconnecting"]);
    expect(sub.stats).toMatchObject({ events: 1, duplicates: 1 });
    sub.reconnect(0);
    expect(FakeES.all[1]!.closed).toBe(true);
    while (FakeES.all.length < 3) await tick();
    expect(FakeES.all[2]!.url).toContain("lastEventId=c1");
  });
});
