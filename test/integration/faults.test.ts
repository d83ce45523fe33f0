/**
 * Faults between flowsync and MongoDB, injected with fail points (aimed at
 * flowsync's own connections through its appName) and with connection resets
 * (a TCP proxy in front of MongoDB that only flowsync goes through). Writers
 * keep writing directly throughout. Each test: subscribers on three flows, a
 * fault held while writes go on, then more writes; every subscriber must get
 * exactly its flow's documents, in order, each once, with no RESET, on the
 * same connection it opened (subscribers never see the fault).
 *
 * The driver resumes by itself on errors labelled ResumableChangeStreamError and
 * on network errors; everything else reaches the watcher, which reopens from its
 * token with backoff. Both paths are exercised.
 */
import type { Document } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Flowsync } from "../../src/flowsync";
import { uniqueDb, useBackend } from "../support/backend";
import { startTestFlowsync, subscribeUrl } from "../support/flowsync";
import { Ledger } from "../support/ledger";
import { SseClient } from "../support/sse-client";
import { TcpProxy } from "../support/tcp-proxy";

const FLOWS = ["fa", "fb", "fc"];
/** How long each fault is held (writes go on meanwhile). */
const HOLD_MS = 1200;

const h = useBackend();
let proxy: TcpProxy;
const figures: Array<{ fault: string; fired: number; events: number }> = [];

beforeAll(async () => {
  proxy = await TcpProxy.start(firstHost(h.backend.url));
});

afterAll(async () => {
  console.log(`faults: ${figures.map((f) => `${f.fault}: fired ${f.fired}×, ${f.events} events checked`).join("; ")}`);
  await proxy?.close();
});

function firstHost(url: string): string {
  return url.replace(/^mongodb:\/\//, "").split(/[/,?]/)[0] ?? "";
}

interface Ctx {
  fs: Flowsync;
  appName: string;
  ledger: Ledger;
}

/** Turns a fail point on for HOLD_MS while documents are written, then off; returns how often it fired. */
async function holdFailPoint(ctx: Ctx, name: string, data: Document): Promise<number> {
  const admin = h.client.db("admin");
  await admin.command({ configureFailPoint: name, mode: "alwaysOn", data: { ...data, appName: ctx.appName } });
  const writes = ctx.ledger.write(Math.round(HOLD_MS / 60), 60);
  // Turned off whatever happens to the writes: a fail point left on would break the next test.
  const off = await writes.then(
    () => admin.command({ configureFailPoint: name, mode: "off" }),
    async (err: unknown) => {
      await admin.command({ configureFailPoint: name, mode: "off" });
      throw err;
    },
  );
  // `count`: how many times it fired while it was on.
  return off.count as number;
}

async function scenario(fault: string, inject: (ctx: Ctx) => Promise<number>): Promise<void> {
  const appName = `faults-${uniqueDb()}`;
  const dbName = uniqueDb("flt");
  // Through the proxy, as a direct connection; short driver timeouts keep recovery quick (see tcp-proxy.ts).
  const fs = await startTestFlowsync(proxy.url(`appName=${appName}&connectTimeoutMS=2000&heartbeatFrequencyMS=500`), { MONGO_DB: dbName });
  const ledger = new Ledger(h.client.db(dbName).collection("nodes"), FLOWS);
  const clients = FLOWS.flatMap((flowId) => [0, 1].map(() => ({ flowId, c: new SseClient(subscribeUrl(fs, flowId)) })));
  try {
    for (const { c } of clients) await c.opened();
    await ledger.write(15);
    const fired = await inject({ fs, appName, ledger });
    expect(fired, `${fault}: the fault fired`).toBeGreaterThan(0);
    await ledger.write(15);
    let events = 0;
    for (const { flowId, c } of clients) events += await ledger.exactlyOnce(c, flowId);
    for (const { c } of clients) expect(c.ended, "the subscriber stayed connected").toBe(false);
    expect(fs.watcher.restarts).toBe(0);
    figures.push({ fault, fired, events });
  } finally {
    await Promise.all(clients.map(({ c }) => c.close()));
    await fs.stop();
  }
}

describe("faults between flowsync and MongoDB: every subscriber gets every event exactly once", () => {
  it("resumable getMore errors with the ResumableChangeStreamError label (failGetMoreAfterCursorCheckout, 91 ShutdownInProgress): the driver resumes", async () => {
    await scenario("getMore 91 labelled", (ctx) => holdFailPoint(ctx, "failGetMoreAfterCursorCheckout", { errorCode: 91 }));
  });

  it("a getMore error carrying the label explicitly (failCommand 50 + errorLabels): the driver resumes", async () => {
    await scenario("getMore 50 + label", (ctx) =>
      holdFailPoint(ctx, "failCommand", { failCommands: ["getMore"], errorCode: 50, errorLabels: ["ResumableChangeStreamError"] }),
    );
  });

  it("a getMore error without the label (failCommand 6 HostUnreachable): the watcher reopens from its token", async () => {
    await scenario("getMore 6 unlabelled", (ctx) => holdFailPoint(ctx, "failCommand", { failCommands: ["getMore"], errorCode: 6, errorLabels: [] }));
  });

  it("NotWritablePrimary (10107) on getMore: the driver marks the server unknown, the watcher reopens", async () => {
    await scenario("getMore 10107 NotWritablePrimary", (ctx) =>
      holdFailPoint(ctx, "failCommand", { failCommands: ["getMore"], errorCode: 10107, errorLabels: [] }),
    );
  });

  it("a step-down: PrimarySteppedDown (189) on getMore and on every reopening aggregate until the election is over", async () => {
    await scenario("step-down 189 on getMore + aggregate", (ctx) =>
      holdFailPoint(ctx, "failCommand", { failCommands: ["getMore", "aggregate"], errorCode: 189, errorLabels: [] }),
    );
  });

  it("the server closes the connection on every getMore (closeConnection)", async () => {
    await scenario("getMore closeConnection", (ctx) => holdFailPoint(ctx, "failCommand", { failCommands: ["getMore"], closeConnection: true }));
  });

  it("a blocked connection: each getMore held 400 ms at the server (blockConnection)", async () => {
    await scenario("getMore blockConnection 400 ms", (ctx) =>
      holdFailPoint(ctx, "failCommand", { failCommands: ["getMore"], blockConnection: true, blockTimeMS: 400 }),
    );
  });

  it("every connection of flowsync reset at once, three times during a burst of writes (closed mid-batch)", async () => {
    await scenario("all connections reset ×3", async ({ ledger }) => {
      const before = proxy.resets;
      for (let k = 0; k < 3; k++) {
        // No pause between writes: the reset lands while batches are in flight.
        const burst = ledger.write(10);
        await new Promise((r) => setTimeout(r, 5));
        proxy.drop();
        await burst;
        await new Promise((r) => setTimeout(r, 200));
      }
      return proxy.resets - before;
    });
  });

  it("every connection reset while idle, with the driver's default heartbeat: its monitor wedges, flowsync reconnects the client and loses nothing", async () => {
    // On a direct connection, the driver (v7) can start a heartbeat on a monitor connection that is
    // closing and wait for it forever (reproduced here every time): without the guard in
    // src/mongo/client-health.ts the stream would never come back. MONGO_MONITOR_STUCK_MS shortens the wait.
    const dbName = uniqueDb("flt");
    const fs = await startTestFlowsync(proxy.url("connectTimeoutMS=1000"), {
      MONGO_DB: dbName,
      CHANGE_STREAM_AWAIT_MS: "1000",
      MONGO_MONITOR_STUCK_MS: "3000",
    });
    const ledger = new Ledger(h.client.db(dbName).collection("nodes"), FLOWS);
    const clients = FLOWS.map((flowId) => ({ flowId, c: new SseClient(subscribeUrl(fs, flowId)) }));
    try {
      for (const { c } of clients) await c.opened();
      await ledger.write(6);
      for (const { flowId, c } of clients) await c.until((x) => Ledger.received(x).length === ledger.expected.get(flowId)!.length, 10_000, "first events");
      await new Promise((r) => setTimeout(r, 400));
      const resets = proxy.resets;
      proxy.drop();
      await new Promise((r) => setTimeout(r, 300));
      await ledger.write(6);
      let events = 0;
      for (const { flowId, c } of clients) events += await ledger.exactlyOnce(c, flowId, { timeoutMs: 20_000 });
      console.log(`faults: idle reset → monitor wedges detected ${fs.health.wedges} (stuck after ${fs.health.stuckAfterMs} ms)`);
      expect(fs.health.wedges).toBeLessThanOrEqual(1);
      figures.push({ fault: "idle reset (monitor wedge)", fired: proxy.resets - resets, events });
    } finally {
      await Promise.all(clients.map(({ c }) => c.close()));
      await fs.stop();
    }
  });
});
