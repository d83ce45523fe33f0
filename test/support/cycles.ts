/**
 * Connect/disconnect cycles against one flowsync, and what the process holds
 * before and after: open sockets and file descriptors, timers, listeners, heap.
 * Shared by the short run in `npm test` and the 10,000-cycle soak.
 */
import { readdirSync } from "node:fs";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import { MongoClient } from "mongodb";
import { expect } from "vitest";
import { uniqueDb, type TestBackend } from "./backend";
import { eventually } from "./eventually";
import { startTestFlowsync, subscribeUrl } from "./flowsync";
import { SseClient } from "./sse-client";

v8.setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

export interface Resources {
  sockets: number;
  fds: number;
  timers: number;
  listeners: number;
  heapMB: number;
  subscribers: number;
}

export interface CycleFigures {
  cycles: number;
  ms: number;
  before: Resources;
  after: Resources;
}

async function settle(): Promise<void> {
  for (let k = 0; k < 3; k++) {
    await new Promise((r) => setTimeout(r, 100));
    gc();
  }
}

export async function cycleScenario(backend: TestBackend, cycles: number): Promise<CycleFigures> {
  const dbName = uniqueDb("cyc");
  const fs = await startTestFlowsync(backend.url, { MONGO_DB: dbName, MAX_STREAMS_PER_IP: "50", HEARTBEAT_MS: "1000" });
  const writer = new MongoClient(backend.url);
  const nodes = writer.db(dbName).collection("nodes");
  const measure = (): Resources => {
    const handles = process.getActiveResourcesInfo();
    return {
      sockets: handles.filter((h) => h === "TCPSocketWrap").length,
      fds: readdirSync("/proc/self/fd").length,
      timers: handles.filter((h) => h === "Timeout").length,
      listeners: process.eventNames().reduce((n, e) => n + process.listenerCount(e), 0),
      heapMB: process.memoryUsage().heapUsed / 2 ** 20,
      subscribers: fs.hub.subscriberCount(),
    };
  };
  try {
    // Warm up (JIT, pools, the first catch-up), then measure.
    await nodes.insertOne({ flowId: "cyc-0", n: 0 });
    let cursor: string | undefined;
    const one = async (i: number) => {
      const c = new SseClient(subscribeUrl(fs, `cyc-${i % 7}`), { lastEventId: i % 5 === 0 ? cursor : undefined });
      await c.opened();
      if (i % 7 === 0 && c.lastEventId) cursor = c.lastEventId;
      await c.close();
    };
    const run = async (from: number, count: number) => {
      const PARALLEL = 20;
      for (let i = from; i < from + count; i += PARALLEL) {
        await Promise.all(Array.from({ length: Math.min(PARALLEL, from + count - i) }, (_, k) => one(i + k)));
        // Events keep flowing meanwhile (replay buffer, fan-out, resumes).
        if (i % 200 === 0) await nodes.insertOne({ flowId: `cyc-${i % 7}`, n: i });
      }
    };
    await run(0, 200);
    await settle();
    const before = measure();
    const t0 = Date.now();
    await run(200, cycles);
    const ms = Date.now() - t0;
    // Every subscription is gone from the hub and from the per-IP count once its client has left.
    await eventually("every subscription gone", () =>
      expect({ subscribers: fs.hub.subscriberCount(), trackedIps: fs.limits.trackedIps }).toEqual({ subscribers: 0, trackedIps: 0 }),
    );
    await settle();
    const after = measure();
    expect(after.subscribers).toBe(0);
    expect(fs.limits.trackedIps).toBe(0);
    expect(after.sockets - before.sockets, "open sockets").toBeLessThanOrEqual(2);
    expect(after.fds - before.fds, "file descriptors").toBeLessThanOrEqual(2);
    expect(after.timers - before.timers, "timers").toBeLessThanOrEqual(3);
    expect(after.listeners - before.listeners, "process listeners").toBe(0);
    // Generous: V8 heaps move by a few MB on their own; a per-cycle leak of even 1 KB would show 10 MB at 10,000.
    expect(after.heapMB - before.heapMB, "heap (MB)").toBeLessThan(8);
    return { cycles, ms, before, after };
  } finally {
    await writer.close();
    await fs.stop();
  }
}
