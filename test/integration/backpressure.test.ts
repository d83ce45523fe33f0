/**
 * Backpressure: a subscriber whose unsent bytes exceed CLIENT_BUFFER_BYTES is
 * disconnected (it resumes with its last id), so memory never grows with a
 * slow client, and nobody else of its flow notices. The slow client here is a
 * bare socket that never reads; large events fill the kernel's socket buffers
 * (several hundred KB on loopback) before flowsync's own queue sees any backlog.
 */
import { describe, expect, it } from "vitest";
import { eventually } from "../support/eventually";
import { subscribeUrl, useFlowsync } from "../support/flowsync";
import { StalledSseClient } from "../support/raw-sse";
import { SseClient } from "../support/sse-client";

const CLIENT_BUFFER_BYTES = 4096;
const CHUNK = "x".repeat(50_000);
/** 400 × 50 KB = 20 MB: far more than loopback socket buffers hold (about 4 MB here, send buffer autotuned). */
const MAX_EVENTS = 400;

const t = useFlowsync("bp", { CLIENT_BUFFER_BYTES: String(CLIENT_BUFFER_BYTES) });
const logs = () => t.db.collection<{ flowId: string; seq: number; chunk?: string }>("flow_logs");

const seqs = (c: SseClient) => c.events().map((e) => (e.data.doc as { seq: number }).seq);

/**
 * A reading and a non-reading subscriber of `flowId`; writes large events,
 * each awaited by the reader, until flowsync drops someone (or MAX_EVENTS).
 */
async function overflow(flowId: string) {
  const fast = new SseClient(subscribeUrl(t.fs, flowId));
  await fast.opened();
  const slow = new StalledSseClient(subscribeUrl(t.fs, flowId));
  await slow.sent();
  await eventually("both subscribers", () => t.fs.hub.subscriberCount(flowId) === 2);
  expect(t.fs.hub.subscriberCount(flowId)).toBe(2);
  const droppedBefore = t.fs.hub.stats.dropped;
  let written = 0;
  while (written < MAX_EVENTS && t.fs.hub.stats.dropped === droppedBefore) {
    await logs().insertOne({ flowId, seq: ++written, chunk: CHUNK });
    await fast.until((x) => x.messages.length === written, 10_000, `event ${written}`);
  }
  return { fast, slow, written, droppedBefore };
}

describe("backpressure", () => {
  it("drops a subscriber that does not read once its unsent bytes exceed CLIENT_BUFFER_BYTES; the others of its flow get every event", async () => {
    const { fast, slow, written, droppedBefore } = await overflow("bp");
    try {
      console.log(
        `backpressure: the non-reading subscriber was dropped after ${written} events of ${CHUNK.length} bytes (~${Math.round((written * CHUNK.length) / 1024)} KB written)`,
      );
      expect(t.fs.hub.stats.dropped).toBe(droppedBefore + 1);
      expect(t.fs.hub.subscriberCount("bp")).toBe(1);
      // More than one event got through before the drop: the limit counts what is queued, not what was sent.
      expect(written).toBeGreaterThan(1);

      for (let k = 1; k <= 5; k++) await logs().insertOne({ flowId: "bp", seq: written + k });
      await fast.until((x) => x.messages.length === written + 5, 10_000, "events after the drop");
      expect(seqs(fast)).toEqual(Array.from({ length: written + 5 }, (_, i) => i + 1));
      expect(t.fs.hub.stats.dropped).toBe(droppedBefore + 1);
    } finally {
      slow.destroy();
      await fast.close();
    }
  }, 120_000);

  it("the dropped subscriber's stream ends, and resuming from the last event it received gets exactly what it missed", async () => {
    const { fast, slow, written } = await overflow("bp2");
    try {
      slow.read();
      // Ended after the bytes already written, or — if it does not read them in time — cut: either way over.
      const over = () => slow.responseEnded || slow.closed;
      await eventually("the slow stream over", () => {
        const tail = JSON.stringify(slow.text.slice(-200));
        expect(over(), `read ${slow.text.length} chars, socket closed: ${slow.closed}, tail ${tail}, hub ${JSON.stringify(t.fs.hub.stats)}`).toBe(true);
      });
      // Only complete events count: a browser sets lastEventId when an event is dispatched, at its blank line.
      const ids = [...slow.text.matchAll(/^id: ([^\n]+)\nevent: [^\n]+\ndata: [^\n]*\n\n/gm)].map((m) => m[1]);
      expect(ids.length).toBeGreaterThan(0);
      expect(ids.length).toBeLessThan(written);

      const resumed = new SseClient(subscribeUrl(t.fs, "bp2"), { lastEventId: ids.at(-1) });
      await resumed.until((x) => x.messages.length === written - ids.length, 10_000, "the events it missed");
      expect(seqs(resumed)).toEqual(Array.from({ length: written - ids.length }, (_, i) => ids.length + i + 1));
      await resumed.close();
    } finally {
      slow.destroy();
      await fast.close();
    }
  }, 120_000);
});
