/**
 * The SSE connection writing its own response: heartbeats from the shared
 * timer reach every open stream (and only open ones), and the response carries
 * the SSE headers merged with those set before it (CORS).
 */
import { describe, expect, it, vi } from "vitest";
import { eventually } from "../support/eventually";
import { subscribeUrl, useFlowsync } from "../support/flowsync";
import { SseClient } from "../support/sse-client";

// A period no other timer of the process uses: timers set with it are heartbeat timers.
const HEARTBEAT_MS = 1009;

const t = useFlowsync("sse", { HEARTBEAT_MS: String(HEARTBEAT_MS) });

const heartbeats = (c: SseClient) => c.raw.split("\n").filter((line) => line === ":").length;

describe("SSE connection", () => {
  it("every open stream gets heartbeats from the one shared timer; a closed one stops counting as a subscriber", async () => {
    // Counts the timers set while the streams open (the spies call through): one interval for all, none per stream.
    const intervals = vi.spyOn(globalThis, "setInterval");
    const timeouts = vi.spyOn(globalThis, "setTimeout");
    const clearedIntervals = vi.spyOn(globalThis, "clearInterval");
    const heartbeatTimers = (spy: typeof intervals | typeof timeouts) => spy.mock.calls.filter((call) => call[1] === HEARTBEAT_MS).length;
    try {
      const clients = ["hb-a", "hb-a", "hb-b", "hb-b", "hb-c", "hb-c"].map((flow) => new SseClient(subscribeUrl(t.fs, flow)));
      for (const c of clients) await c.opened();
      for (const c of clients) await c.until((x) => heartbeats(x) >= 2, 10_000, "two heartbeats");
      expect(heartbeatTimers(intervals), "heartbeat intervals for 6 streams").toBe(1);
      expect(heartbeatTimers(timeouts), "heartbeat timeouts").toBe(0);
      const timer = intervals.mock.results.find((_, i) => intervals.mock.calls[i]![1] === HEARTBEAT_MS)!.value as NodeJS.Timeout;

      await clients[0]!.close();
      await eventually("the closed stream gone", () => expect(t.fs.hub.subscriberCount()).toBe(5));
      const before = heartbeats(clients[1]!);
      await clients[1]!.until((x) => heartbeats(x) > before, 10_000, "one more heartbeat");
      expect(clients[1]!.messages).toEqual([]); // heartbeats are comments, not events

      // The last stream gone, the timer goes too.
      await Promise.all(clients.slice(1).map((c) => c.close()));
      await eventually("the heartbeat timer cleared", () => clearedIntervals.mock.calls.some(([t]) => t === timer));
      expect(heartbeatTimers(intervals), "heartbeat intervals").toBe(1);
    } finally {
      intervals.mockRestore();
      timeouts.mockRestore();
      clearedIntervals.mockRestore();
    }
  });

  it("answers with the SSE headers and status 200 although Koa sends nothing itself", async () => {
    const c = new SseClient(subscribeUrl(t.fs, "hb-h"));
    await c.opened();
    expect(c.status).toBe(200);
    expect(c.headers?.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(c.headers?.get("cache-control")).toBe("no-cache, no-transform");
    expect(c.headers?.get("x-accel-buffering")).toBe("no");
    await c.close();
  });
});
