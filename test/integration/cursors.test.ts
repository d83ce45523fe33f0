/**
 * Subscribers cost memory and socket writes, never MongoDB cursors or pool
 * connections: the server sees ONE change-stream cursor from flowsync however
 * many browsers listen (MongoDB SERVER-32946 / NODE-1305: a stream per
 * subscriber collapses). A resume that needs MongoDB adds one short-lived
 * catch-up cursor, gone when the resume is done.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Flowsync } from "../../src/flowsync";
import { uniqueDb, useBackend } from "../support/backend";
import { subscribeUrl, useFlowsync } from "../support/flowsync";
import { StalledSseClient } from "../support/raw-sse";
import { eventually } from "../support/eventually";
import { changeStreamCursors, serverConnections, withAppName } from "../support/server-view";
import { SseClient } from "../support/sse-client";

const HOT = "hot";
const COLD = ["c0", "c1", "c2", "c3"];
/** Half the subscribers on one hot flow, the rest spread over a few others. */
const flowOf = (i: number) => (i % 2 === 0 ? HOT : COLD[(i >> 1) % COLD.length]);

const h = useBackend();

async function openAll(fs: Flowsync, count: number): Promise<SseClient[]> {
  const clients: SseClient[] = [];
  // In waves: 500 handshakes at once would only measure the test machine.
  for (let i = 0; i < count; i += 50) {
    const wave = Array.from({ length: Math.min(50, count - i) }, (_, k) => new SseClient(subscribeUrl(fs, flowOf(i + k)!)));
    await Promise.all(wave.map((c) => c.opened(20_000)));
    clients.push(...wave);
  }
  return clients;
}

describe("one change stream per instance", () => {
  const appName = `cursors-${uniqueDb()}`;
  // The appName tells flowsync's connections apart on a mongod shared with other test files.
  const t = useFlowsync("cur", {}, { backend: h, url: (url) => withAppName(url, appName) });

  beforeAll(async () => {
    await t.db.collection("nodes").insertOne({ flowId: "warm-up" });
  });

  it.each([1, 10, 500])(
    "with %i subscribers the server sees exactly one change-stream cursor and no extra connections",
    async (count) => {
      const connectionsBefore = await serverConnections(h.backend, h.client, appName);
      expect(await changeStreamCursors(h.client, t.db.databaseName)).toBe(1);

      const clients = await openAll(t.fs, count);
      try {
        expect(t.fs.hub.subscriberCount()).toBe(count);
        // Every subscriber is live: one event per flow reaches each of them.
        const flows = [...new Set(clients.map((_, i) => flowOf(i)))];
        const marker = `n${count}`;
        for (const flowId of flows) await t.db.collection("nodes").insertOne({ flowId, marker });
        await Promise.all(
          clients.map((c) => c.until((x) => x.events().some((e) => (e.data.doc as { marker?: string } | null)?.marker === marker), 20_000, `event ${marker}`)),
        );

        const cursors = await changeStreamCursors(h.client, t.db.databaseName);
        const connectionsAfter = await serverConnections(h.backend, h.client, appName);
        console.log(`cursors: ${count} subscribers → ${cursors} change-stream cursor(s); connections ${connectionsBefore} → ${connectionsAfter}`);
        expect(cursors).toBe(1);
        // Generous: pools may open a connection or two on their own; per-subscriber growth would be ≥ count.
        expect(connectionsAfter - connectionsBefore).toBeLessThanOrEqual(4);
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
      await eventually("every subscriber gone", () => expect(t.fs.hub.subscriberCount()).toBe(0));
      expect(await changeStreamCursors(h.client, t.db.databaseName)).toBe(1);
    },
    120_000,
  );
});

describe("one change stream per instance, with presence on", () => {
  const appName = `cursors-presence-${uniqueDb()}`;
  // Presence documents ride the same stream: its $match lets the presence collection through.
  const t = useFlowsync("curp", { PRESENCE: "on" }, { backend: h, url: (url) => withAppName(url, appName) });

  it("with 20 listed subscribers the server sees exactly one change-stream cursor, while its presence documents are written", async () => {
    const clients = await openAll(t.fs, 20);
    try {
      await eventually("every flow's presence document written", async () =>
        expect(await t.db.collection("flowsync_presence").countDocuments()).toBe(1 + COLD.length),
      );
      expect(await changeStreamCursors(h.client, t.db.databaseName)).toBe(1);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  }, 60_000);
});

describe("catch-up cursors", () => {
  const appName = `catch-up-${uniqueDb()}`;
  // A replay buffer of 1: every resume from an older cursor needs a catch-up stream.
  // One catch-up at a time: a second resume starts only once the first has released its stream.
  const t = useFlowsync("cu", { REPLAY_BUFFER_SIZE: "1", CATCHUP_CONCURRENCY: "1" }, { backend: h, url: (url) => withAppName(url, appName) });

  /** flowsync's aggregates the server is running now (a fail point holds them). */
  async function heldAggregates(): Promise<number> {
    const ops = await h.client
      .db("admin")
      .aggregate([{ $currentOp: { allUsers: true } }, { $match: { appName, "command.aggregate": { $exists: true } } }])
      .toArray();
    return ops.length;
  }

  /** The cursor of a first event in `flowId`, then `missed` more events written while nobody listens. */
  async function missedEvents(flowId: string, missed: number, chunk = ""): Promise<string> {
    const first = new SseClient(subscribeUrl(t.fs, flowId));
    await first.opened();
    await t.db.collection("flow_logs").insertOne({ flowId, seq: 0 });
    await first.until((x) => x.messages.length === 1, 10_000, "first event");
    await first.close();
    for (let seq = 1; seq <= missed; seq++) await t.db.collection("flow_logs").insertOne({ flowId, seq, chunk });
    return first.lastEventId!;
  }

  it("a resume through MongoDB holds one more cursor while it runs, and none once it is done or its client left", async () => {
    // More than a socket's buffers hold, so a client that does not read stalls its catch-up midway.
    const MISSED = 100;
    const cursor = await missedEvents("cu", MISSED, "x".repeat(50_000));
    expect(await changeStreamCursors(h.client, t.db.databaseName)).toBe(1);
    const resumesBefore = t.fs.subscriptions.counters.replayedFromMongo;

    const stalled = new StalledSseClient(subscribeUrl(t.fs, "cu"), { "Last-Event-ID": cursor });
    await stalled.sent();
    await eventually("the catch-up cursor", async () => expect(await changeStreamCursors(h.client, t.db.databaseName)).toBe(2));
    // Still there a while later: the catch-up is stalled midway by its client, not finished.
    await new Promise((r) => setTimeout(r, 500));
    const during = await changeStreamCursors(h.client, t.db.databaseName);
    console.log(`catch-up: ${during} change-stream cursors while a resume is stalled midway`);
    expect(during).toBe(2);
    expect(t.fs.subscriptions.counters.replayedFromMongo).toBe(resumesBefore + 1);
    // The client leaves mid catch-up: its cursor goes with it.
    stalled.destroy();
    await eventually("the catch-up cursor closed", async () => expect(await changeStreamCursors(h.client, t.db.databaseName)).toBe(1));

    // A client that reads: the whole backlog, then live; by then the catch-up cursor is closed.
    const resumed = new SseClient(subscribeUrl(t.fs, "cu"), { lastEventId: cursor });
    await resumed.until((x) => x.messages.length === MISSED, 30_000, "the backlog");
    await t.db.collection("flow_logs").insertOne({ flowId: "cu", seq: "live" });
    await resumed.until((x) => x.messages.length === MISSED + 1, 10_000, "the live event");
    expect(resumed.events().map((e) => (e.data.doc as { seq: unknown }).seq)).toEqual([...Array.from({ length: MISSED }, (_, k) => k + 1), "live"]);
    expect(t.fs.subscriptions.counters.replayedFromMongo).toBe(resumesBefore + 2);
    expect(await changeStreamCursors(h.client, t.db.databaseName)).toBe(1);
    await resumed.close();
  }, 60_000);

  it("a client that leaves while its catch-up stream is still opening leaves no cursor behind", async () => {
    const cursor = await missedEvents("cu-open", 3);
    // Holds flowsync's next aggregate (the catch-up's) at the server, so the client leaves before its reply.
    await h.client.db("admin").command({
      configureFailPoint: "failCommand",
      mode: { times: 1 },
      data: { failCommands: ["aggregate"], blockConnection: true, blockTimeMS: 1000, appName },
    });
    const leaving = new SseClient(subscribeUrl(t.fs, "cu-open"), { lastEventId: cursor });
    await leaving.opened();
    // Leaves once the server holds the aggregate (not after a guessed pause): nothing of the catch-up can have come yet.
    await eventually("the catch-up's aggregate held at the server", async () => (await heldAggregates()) === 1);
    await leaving.close();
    expect(leaving.messages).toEqual([]);

    // One catch-up at a time: this one runs only after the first has closed its stream.
    const next = new SseClient(subscribeUrl(t.fs, "cu-open"), { lastEventId: cursor });
    await next.until((x) => x.messages.length === 3, 10_000, "the backlog");
    expect(await changeStreamCursors(h.client, t.db.databaseName)).toBe(1);
    await next.close();
  });
});
