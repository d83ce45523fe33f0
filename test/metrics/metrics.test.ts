/**
 * GET /metrics drives real events through flowsync and reads the counters back
 * from the Prometheus text. No timing assertions: values are counts.
 */
import net from "node:net";

import { describe, expect, it } from "vitest";
import { FlowHub } from "../../src/hub/flow-hub";
import { ReplayBuffer } from "../../src/hub/replay-buffer";
import { SubscriberQueue } from "../../src/hub/subscriber-queue";
import { clusterSecondsOfToken, createMetrics } from "../../src/metrics";
import { eventually } from "../support/eventually";
import { connected, subscribeUrl, useFlowsync } from "../support/flowsync";

// A small replay buffer, so that an old cursor must catch up from MongoDB; the smallest client buffer, to drop a stalled client.
const t = useFlowsync("metrics", { REPLAY_BUFFER_SIZE: "4", CLIENT_BUFFER_BYTES: "1024" });

type Sample = { name: string; labels: Record<string, string>; value: number };

async function scrape(): Promise<{ text: string; samples: Sample[]; contentType: string | null }> {
  const res = await fetch(`${t.fs.url}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { text, samples, contentType: res.headers.get("content-type") };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

describe("GET /metrics", () => {
  it("counts subscribers, received, published and delivered events by type, skips, replays, RESETs and bytes", async () => {
    const before = await scrape();
    expect(before.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(value(before.samples, "flowsync_subscribers")).toBe(0);
    expect(value(before.samples, "flowsync_change_stream_restarts_total")).toBe(0);

    const a1 = await connected(t.fs, "metrics-a");
    const a2 = await connected(t.fs, "metrics-a");
    const b = await connected(t.fs, "metrics-b");
    expect(value((await scrape()).samples, "flowsync_subscribers")).toBe(3);

    await t.db.collection("nodes").insertOne({ flowId: "metrics-a", type: "llm" });
    await t.db.collection("edges").insertOne({ flowId: "metrics-a", source: "x", target: "y" });
    await t.db.collection("flow_logs").insertOne({ flowId: "metrics-b", chunk: "tok" });
    await t.db.collection("nodes").insertOne({ type: "orphan" }); // no flowId: a counted skip
    await t.db.collection("flow_executions").insertOne({ flowId: "metrics-nobody", status: "running" });
    for (const c of [a1, a2]) await c.until((x) => x.messages.length >= 2, 10_000, "2 events");
    await b.until((x) => x.messages.length >= 1, 10_000, "1 event");
    await eventually("5 changes received", () => t.fs.feed.counters.received >= 5);

    const { samples, text } = await scrape();
    expect(value(samples, "flowsync_changes_received_total")).toBe(5);
    expect(value(samples, "flowsync_events_published_total", { type: "SYNC_CANVAS" })).toBe(2);
    expect(value(samples, "flowsync_events_published_total", { type: "LOG_STREAM" })).toBe(1);
    expect(value(samples, "flowsync_events_published_total", { type: "EXECUTION_UPDATE" })).toBe(1);
    expect(value(samples, "flowsync_events_delivered_total", { type: "SYNC_CANVAS" })).toBe(4); // 2 events × 2 subscribers
    expect(value(samples, "flowsync_events_delivered_total", { type: "LOG_STREAM" })).toBe(1);
    expect(value(samples, "flowsync_events_delivered_total", { type: "EXECUTION_UPDATE" })).toBe(0); // nobody listens
    expect(value(samples, "flowsync_changes_skipped_total", { reason: "unroutable" })).toBe(1);
    expect(value(samples, "flowsync_replays_total", { source: "memory" })).toBe(0);
    const lag = value(samples, "flowsync_watcher_lag_seconds");
    expect(Number.isFinite(lag)).toBe(true);
    expect(lag).toBeGreaterThanOrEqual(0);
    // Every byte the clients read was written, and counted (plus headers and the /metrics answers).
    const read = [a1, a2, b].reduce((sum, c) => sum + Buffer.byteLength(c.raw), 0);
    expect(value(samples, "flowsync_bytes_written_total")).toBeGreaterThan(read);
    // Bounded labels only: no flowId anywhere.
    expect(text).not.toContain("metrics-a");
    expect(text).not.toContain("metrics-nobody");
    // Process metrics of this instance's own registry.
    expect(value(samples, "process_resident_memory_bytes")).toBeGreaterThan(0);

    // Resumes: a recent cursor from memory, an evicted one from MongoDB, a malformed one gets RESET.
    const oldest = a1.messages[0]!.id!;
    const newest = a1.lastEventId!;
    const fromMemory = await connected(t.fs, "metrics-a", newest);
    for (let i = 0; i < 6; i++) await t.db.collection("flow_logs").insertOne({ flowId: "metrics-z", i }); // evicts metrics-a's events
    await eventually("11 changes received", () => t.fs.feed.counters.received >= 11);
    const fromMongo = await connected(t.fs, "metrics-a", oldest);
    await fromMongo.until((x) => x.messages.length >= 1, 10_000, "the caught-up event");
    const reset = await connected(t.fs, "metrics-a", "garbage");
    await reset.until((x) => x.messages.length >= 1, 10_000, "RESET");

    const after = (await scrape()).samples;
    expect(value(after, "flowsync_replays_total", { source: "memory" })).toBe(1);
    expect(value(after, "flowsync_replays_total", { source: "mongodb" })).toBe(1);
    expect(value(after, "flowsync_resets_sent_total", { cause: "cursor" })).toBe(1);
    expect(value(after, "flowsync_resets_sent_total", { cause: "stream-restart" })).toBe(0);
    expect(value(after, "flowsync_subscriptions_opened_total")).toBe(6);
    expect(value(after, "flowsync_replay_buffer_events")).toBe(4);

    expect(fromMongo.events()).toMatchObject([{ type: "SYNC_CANVAS", data: { entity: "edge" } }]);
    await eventually("the catch-up stream closed", async () => value((await scrape()).samples, "flowsync_catchup_streams_open") === 0);

    await Promise.all([a1, a2, b, fromMemory, fromMongo, reset].map((c) => c.close()));
    await eventually("subscribers gone", async () => value((await scrape()).samples, "flowsync_subscribers") === 0);
  });

  it("counts a stalled client dropped for exceeding CLIENT_BUFFER_BYTES", async () => {
    const u = new URL(subscribeUrl(t.fs, "metrics-slow"));
    const socket = net.connect({ host: u.hostname, port: Number(u.port) });
    socket.pause(); // never reads: the kernel buffers fill, then flowsync's queue
    socket.on("error", () => {});
    await new Promise<void>((resolve) => socket.once("connect", () => socket.write(`GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`, () => resolve())));
    await eventually("stalled subscriber registered", () => t.fs.hub.subscriberCount("metrics-slow") === 1);
    const big = "x".repeat(64 * 1024);
    for (let i = 0; i < 400 && t.fs.hub.stats.dropped === 0; i++) await t.db.collection("flow_logs").insertOne({ flowId: "metrics-slow", chunk: big });
    await eventually("the drop counted", async () => value((await scrape()).samples, "flowsync_slow_clients_dropped_total") === 1);
    socket.destroy();
  });

  it("keeps one registry per instance and reads the lag from the watcher's position", async () => {
    const now = 1_800_000_010_000;
    const sources = { hub: t.fs.hub, feed: t.fs.feed, subscriptions: t.fs.subscriptions, catchUps: { active: 0, queued: 0 }, now: () => now };
    const one = createMetrics({ ...sources, watcher: { position: { _data: "826B49D1F000000001" }, restarts: 2 } }, { processMetrics: false });
    const two = createMetrics({ ...sources, watcher: { position: undefined, restarts: 0 } }, { processMetrics: false });
    expect(one.registry).not.toBe(two.registry);
    const t1 = await one.text();
    expect(t1).toMatch(new RegExp(`^flowsync_watcher_lag_seconds ${now / 1000 - 0x6b49d1f0}$`, "m"));
    expect(t1).toMatch(/^flowsync_change_stream_restarts_total 2$/m);
    expect(await two.text()).toMatch(/^flowsync_watcher_lag_seconds nan$/im);
    expect(clusterSecondsOfToken("826B49D1F00000000180000000")).toBe(0x6b49d1f0);
    expect(clusterSecondsOfToken("nonsense")).toBeUndefined();
  });

  it("samples the event-loop delay every METRICS_EVENT_LOOP_MS (default 100 ms), not every 10 ms", async () => {
    // A sample is the time between two ticks of a repeating timer, which never fires early: at 100 ms none is
    // below 50 ms, where prom-client's own 10 ms gives ~10 ms. No upper bound: a busy machine only adds to it.
    // A scrape resets the histogram and its next tick starts a new interval, so scrapes are spaced ever wider
    // until one finds a sample (the spacing is no bound on anything).
    const minSample = async (read: () => Promise<string>) => {
      for (let gapMs = 100; ; gapMs *= 2) {
        const min = Number(/^nodejs_eventloop_lag_min_seconds (\S+)$/m.exec(await read())?.[1]);
        if (min < 1e6) return min; // an empty histogram reports 9.2e9 s
        if (gapMs > 60_000) throw new Error("no event-loop sample");
        await new Promise((r) => setTimeout(r, gapMs));
      }
    };
    const instance = await minSample(async () => (await scrape()).text);
    expect(instance).toBeGreaterThanOrEqual(0.05);
    const sources = { hub: t.fs.hub, feed: t.fs.feed, subscriptions: t.fs.subscriptions, catchUps: { active: 0, queued: 0 }, watcher: t.fs.watcher };
    const slow = createMetrics(sources, { eventLoopSampleMs: 300 });
    expect(await minSample(() => slow.text())).toBeGreaterThanOrEqual(0.15);
  });

  it("counts a RESET broadcast after a stream restart once per subscriber, apart from published events", async () => {
    const hub = new FlowHub({ replay: new ReplayBuffer({ capacity: 10 }) });
    const queues = [new SubscriberQueue({ maxBytes: 1 << 20 }), new SubscriberQueue({ maxBytes: 1 << 20 }), new SubscriberQueue({ maxBytes: 1 << 20 })];
    hub.subscribe("f1", queues[0]!);
    hub.subscribe("f1", queues[1]!);
    hub.subscribe("f2", queues[2]!);
    hub.publish({ flowId: "f1", frame: "data: {}\n\n", token: "8201", type: "LOG_STREAM" });
    hub.broadcast((flowId) => `event: RESET\ndata: {"flowId":"${flowId}"}\n\n`);
    expect(Object.fromEntries(hub.typeCounts())).toEqual({ LOG_STREAM: { published: 1, delivered: 2 }, RESET: { published: 0, delivered: 3 } });
    const metrics = createMetrics(
      { hub, feed: t.fs.feed, subscriptions: t.fs.subscriptions, watcher: { position: undefined, restarts: 1 }, catchUps: { active: 0, queued: 0 } },
      { processMetrics: false },
    );
    const text = await metrics.text();
    expect(text).toMatch(/^flowsync_resets_sent_total\{cause="stream-restart"\} 3$/m);
    expect(text).toMatch(/^flowsync_events_delivered_total\{type="RESET"\} 3$/m);
    expect(text).not.toMatch(/^flowsync_events_published_total\{type="RESET"\}/m);
    for (const q of queues) q.close("shutdown");
  });
});
