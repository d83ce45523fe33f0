/**
 * MongoDB out of reach, then back (test/support/outage.ts): the watcher resumes
 * from its token and loses nothing that other writers wrote meanwhile; /readyz
 * is 503 during the outage and 200 after; subscribers stay connected (heartbeats
 * go on) and one that reconnects during the outage is served from memory.
 * Short outages here; `npm run test:soak` holds one for 30 s.
 *
 * And the outage that outlasts the oplog: every subscriber gets RESET
 * (history-lost), then new events flow.
 */
import { MongoClient } from "mongodb";
import { describe, expect, inject, it } from "vitest";
import { startTestBackend, uniqueDb, useBackend } from "../support/backend";
import { startTestFlowsync, subscribeUrl } from "../support/flowsync";
import { outageScenario } from "../support/outage";
import { SseClient } from "../support/sse-client";
import { TcpProxy } from "../support/tcp-proxy";

const onSimulator = inject("backend").kind === "sim";
const OUTAGE_MS = 4000;

const h = useBackend();

describe("MongoDB unreachable, then back", () => {
  it(`connections refused for ${OUTAGE_MS / 1000} s: nothing lost, not ready meanwhile, subscribers stay connected`, async () => {
    const figures = await outageScenario(h.backend, "refuse", OUTAGE_MS);
    console.log("outage:", JSON.stringify(figures));
  }, 60_000);

  it(`a blackhole (connections hang) for ${OUTAGE_MS / 1000} s: nothing lost, not ready meanwhile, subscribers stay connected`, async () => {
    const figures = await outageScenario(h.backend, "blackhole", OUTAGE_MS);
    console.log("outage:", JSON.stringify(figures));
  }, 60_000);

  it.runIf(onSimulator)(
    "an outage longer than the oplog: every subscriber gets RESET (history-lost), then new events",
    async () => {
      // Simulator only: an oplog of 30 entries, overflowed by the writes made during the outage.
      const small = await startTestBackend({ oplogSize: 30 });
      const proxy = await TcpProxy.start(small.url.replace(/^mongodb:\/\//, "").split(/[/,?]/)[0]!);
      const writer = new MongoClient(small.url);
      const dbName = uniqueDb("out");
      const fs = await startTestFlowsync(proxy.url("connectTimeoutMS=2000&heartbeatFrequencyMS=500"), { MONGO_DB: dbName });
      const nodes = writer.db(dbName).collection("nodes");
      const clients = ["la", "la", "lb"].map((flowId) => ({ flowId, c: new SseClient(subscribeUrl(fs, flowId)) }));
      try {
        for (const { c } of clients) await c.opened();
        for (const flowId of ["la", "lb"]) await nodes.insertOne({ flowId, n: "before" });
        for (const { c } of clients) await c.until((x) => x.messages.length === 1, 10_000, "event before");

        await proxy.cut("refuse");
        for (let n = 0; n < 60; n++) await nodes.insertOne({ flowId: "la", n });
        await proxy.restore();

        for (const { c } of clients) await c.until((x) => x.messages.length === 2, 30_000, "RESET");
        for (const flowId of ["la", "lb"]) await nodes.insertOne({ flowId, n: "after" });
        for (const { c } of clients) await c.until((x) => x.messages.length === 3, 10_000, "a live event after the RESET");
        for (const { flowId, c } of clients) {
          const shape = c
            .events()
            .map((e) => (e.type === "RESET" ? `RESET:${e.data.reason}:${e.data.flowId}` : `${e.type}:${(e.data.doc as { n: unknown }).n}`));
          expect(shape).toEqual(["SYNC_CANVAS:before", `RESET:history-lost:${flowId}`, "SYNC_CANVAS:after"]);
          expect(c.ended).toBe(false);
        }
        expect(fs.watcher.restarts).toBe(1);
        expect((await fetch(`${fs.url}/readyz`)).status).toBe(200);
      } finally {
        await Promise.all(clients.map(({ c }) => c.close()));
        await fs.stop();
        await writer.close();
        await proxy.close();
        await small.stop();
      }
    },
    60_000,
  );
});
