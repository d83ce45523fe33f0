/**
 * flowsync-client against a running flowsync (fetch reader): RESET → snapshot
 * refetch → live, and resume after a server-side cut with nothing lost or repeated.
 */

import { describe, expect, it } from "vitest";
import { createFlowStore, subscribeFlow, type ConnectionState, type DocEvent } from "flowsync-client";
import { eventually } from "../support/eventually";
import { useFlowsync } from "../support/flowsync";

const t = useFlowsync("client", { RETRY_MS: "100" });

type Doc = { _id: string; flowId: string; [k: string]: unknown };

describe("flowsync-client against flowsync", () => {
  it("on RESET refetches the snapshot, hands it over, and continues live from its cursor", async () => {
    const nodes = t.db.collection<Doc>("nodes");
    await nodes.insertMany([
      { _id: "r1", flowId: "cl-reset", v: 1 },
      { _id: "r2", flowId: "cl-reset", v: 2 },
    ]);
    const store = createFlowStore();
    const log: string[] = [];
    const sub = subscribeFlow(
      t.fs.url,
      "cl-reset",
      {
        onReset: (d) => log.push(`reset ${d.reason}`),
        onSnapshot: (s, m) => log.push(`snapshot ${m.reason} ${s.canvas.node?.length ?? 0}`),
      },
      { lastEventId: "1.zzzzzz.ABCD", store, transport: "fetch" },
    );
    await eventually("the snapshot after RESET", () => log.length >= 2 && sub.state === "open");
    expect(log).toEqual(["reset cursor-foreign", "snapshot reset 2"]);
    expect(sub.lastEventId).toMatch(/^1\.[a-z0-9]+\.T\d+_\d+$/);
    await nodes.updateOne({ _id: "r1" }, { $set: { v: 10 } });
    await eventually("the live update", () => store.getState().nodes.r1?.v === 10);
    expect(Object.keys(store.getState().nodes).sort()).toEqual(["r1", "r2"]);
    sub.close();
    expect(sub.state).toBe("closed");
  });

  it("resumes with the last id after the server cuts the stream: every write once, in order", async () => {
    const nodes = t.db.collection<Doc>("nodes");
    const events: DocEvent[] = [];
    const states: ConnectionState[] = [];
    const sub = subscribeFlow(t.fs.url, "cl-cut", { onEvent: (e) => events.push(e), onState: (s) => states.push(s) }, { transport: "fetch" });
    await eventually("open", () => sub.state === "open");
    const written: string[] = [];
    for (let i = 0; i < 5; i++) {
      await nodes.insertOne({ _id: `a${i}`, flowId: "cl-cut" });
      written.push(`a${i}`);
    }
    await eventually("first batch", () => events.length === 5);
    t.fs.hub.closeAll("reset");
    await eventually("the cut", () => sub.state === "reconnecting");
    for (let i = 0; i < 5; i++) {
      await nodes.insertOne({ _id: `b${i}`, flowId: "cl-cut" });
      written.push(`b${i}`);
    }
    // A sentinel, not a pause: the flow's events arrive in order, so a lost or repeated one shows before it.
    await nodes.insertOne({ _id: "sentinel", flowId: "cl-cut" });
    written.push("sentinel");
    await eventually("the sentinel", () => events.some((e) => e.data.id === "sentinel"));
    expect(events.map((e) => e.data.id)).toEqual(written);
    expect(states).toEqual(["open", "reconnecting", "open"]);
    expect(sub.stats).toMatchObject({ events: 11, duplicates: 0, reconnects: 1, resets: 0, snapshots: 1 });
    sub.close();
  });

  it("sends headers and getToken's token on every request", async () => {
    const seen: Array<Record<string, string>> = [];
    const sub = subscribeFlow(
      t.fs.url,
      "cl-auth",
      {},
      {
        getToken: () => "tok",
        headers: { "X-Trace": "t1" },
        fetch: (url, init) => {
          seen.push(init.headers);
          return fetch(url, init);
        },
      },
    );
    await eventually("open", () => sub.state === "open");
    sub.close();
    expect(sub.transport).toBe("fetch");
    expect(seen).toHaveLength(2); // snapshot, subscribe
    for (const h of seen) expect(h).toMatchObject({ Authorization: "Bearer tok", "X-Trace": "t1" });
  });
});
