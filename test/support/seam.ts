/**
 * The seam between a snapshot and the stream after it, under writers that do
 * not wait for anyone: the shared part of the snapshot tests.
 */
import { MongoClient } from "mongodb";
import type { FlowsyncFixture } from "./flowsync";
import { subscribeUrl } from "./flowsync";
import { SseClient } from "./sse-client";

/**
 * `writers` independent clients run `write(client, w, stopped)` until `stopped()`;
 * a subscriber with `?snapshot=1` joins `flowId` at a random moment, the writers
 * stop a random moment later, and a sentinel written after them all is waited
 * for: a flow's events arrive in order, so by then the subscriber has all there
 * is. Returns its events, the SNAPSHOT first.
 */
export async function snapshotMidWrites(
  t: FlowsyncFixture,
  flowId: string,
  rand: () => number,
  writers: number,
  write: (client: MongoClient, w: number, stopped: () => boolean) => Promise<void>,
): Promise<ReturnType<SseClient["events"]>> {
  const clients = await Promise.all(Array.from({ length: writers }, () => new MongoClient(t.backend.url).connect()));
  let stop = false;
  const running = clients.map((client, w) => write(client, w, () => stop));
  try {
    await new Promise((r) => setTimeout(r, 20 + rand() * 60));
    const c = new SseClient(subscribeUrl(t.fs, flowId, "?snapshot=1"));
    try {
      await c.until((x) => x.messages.length >= 1, 10_000, "SNAPSHOT");
      await new Promise((r) => setTimeout(r, 20 + rand() * 60));
      stop = true;
      await Promise.all(running);
      const sentinel = `${flowId}-end`;
      await t.db.collection<{ _id: string; flowId: string }>("nodes").insertOne({ _id: sentinel, flowId });
      await c.until((x) => x.events().some((e) => e.data.id === sentinel), 20_000, "the sentinel");
    } finally {
      await c.close();
    }
    return c.events();
  } finally {
    stop = true;
    await Promise.allSettled(running);
    await Promise.all(clients.map((client) => client.close()));
  }
}
