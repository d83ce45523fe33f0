/**
 * The MongoDB outage scenario, shared by the short run in `npm test` and the
 * 30-second one in `npm run test:soak`: flowsync alone is cut off MongoDB (a TCP
 * proxy: refused, or blackholed), while the database keeps running and keeps
 * taking other writers' writes; then the way is restored.
 */
import { MongoClient } from "mongodb";
import { expect } from "vitest";
import { uniqueDb, type TestBackend } from "./backend";
import { eventually } from "./eventually";
import { startTestFlowsync, subscribeUrl } from "./flowsync";
import { Ledger } from "./ledger";
import { SseClient } from "./sse-client";
import { TcpProxy, type CutMode } from "./tcp-proxy";

export interface OutageFigures {
  mode: CutMode;
  outageMs: number;
  writtenDuringOutage: number;
  events: number;
  heartbeatsDuringOutage: number;
  readyDownAfterMs: number;
  readyUpAfterMs: number;
  deliveredAfterMs: number;
}

const FLOWS = ["oa", "ob"];
const HEARTBEAT_MS = 1000;

async function readyStatus(url: string): Promise<number> {
  return (await fetch(`${url}/readyz`)).status;
}

/** How long until /readyz answers `status`. */
async function waitStatus(url: string, status: number, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  await eventually(`/readyz to answer ${status}`, async () => (await readyStatus(url)) === status, timeoutMs);
  return Date.now() - t0;
}

const heartbeats = (raw: string) => (raw.match(/^:\n/gm) ?? []).length;

export async function outageScenario(backend: TestBackend, mode: CutMode, outageMs: number): Promise<OutageFigures> {
  const proxy = await TcpProxy.start(backend.url.replace(/^mongodb:\/\//, "").split(/[/,?]/)[0]!);
  const writer = new MongoClient(backend.url);
  const dbName = uniqueDb("out");
  const fs = await startTestFlowsync(proxy.url("connectTimeoutMS=2000&heartbeatFrequencyMS=500"), { MONGO_DB: dbName, HEARTBEAT_MS: String(HEARTBEAT_MS) });
  const ledger = new Ledger(writer.db(dbName).collection("nodes"), FLOWS);
  const stay = FLOWS.map((flowId) => ({ flowId, c: new SseClient(subscribeUrl(fs, flowId)) }));
  let mover = new SseClient(subscribeUrl(fs, FLOWS[0]!));
  try {
    for (const c of [...stay.map((s) => s.c), mover]) await c.opened();
    await ledger.write(10);
    await mover.until((x) => Ledger.received(x).length === ledger.expected.get(FLOWS[0]!)!.length, 10_000, "first events");
    expect(await readyStatus(fs.url)).toBe(200);

    // The mover drops off just before the outage and misses a few events that flowsync still gets.
    await mover.close();
    const moverSeen = Ledger.received(mover);
    const moverCursor = mover.lastEventId;
    await ledger.write(6);
    for (const { flowId, c } of stay)
      await c.until((x) => Ledger.received(x).length === ledger.expected.get(flowId)!.length, 10_000, "events before the outage");

    const cutAt = Date.now();
    await proxy.cut(mode);
    const readyDownAfterMs = await waitStatus(fs.url, 503, 10_000);
    const rawAtCut = stay.map(({ c }) => c.raw.length);
    const seenAtCut = stay.map(({ c }) => Ledger.received(c).length);

    // MongoDB is out of reach: the mover comes back now, with its cursor, and is served from memory.
    mover = new SseClient(subscribeUrl(fs, FLOWS[0]!), { lastEventId: moverCursor });
    const beforeOutage = ledger.expected.get(FLOWS[0]!)!.length;
    await mover.until((x) => moverSeen.length + Ledger.received(x).length === beforeOutage, 10_000, "the missed events, from memory, during the outage");

    // Other writers go on writing; readiness stays down the whole time.
    const writtenBefore = ledger.written;
    let notReady = 0;
    while (Date.now() - cutAt < outageMs) {
      await ledger.write(1);
      if ((await readyStatus(fs.url)) === 503) notReady++;
      else throw new Error(`/readyz answered ready ${Date.now() - cutAt} ms into the outage`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const writtenDuringOutage = ledger.written - writtenBefore;
    expect(notReady).toBeGreaterThan(0);
    const heartbeatsDuringOutage = Math.min(...stay.map(({ c }, i) => heartbeats(c.raw.slice(rawAtCut[i]))));
    const elapsed = Date.now() - cutAt;
    // Heartbeats continue (one per HEARTBEAT_MS, give or take the edges) and nothing else arrives.
    expect(heartbeatsDuringOutage).toBeGreaterThanOrEqual(Math.floor(elapsed / HEARTBEAT_MS) - 2);
    // Nothing can arrive while flowsync cannot read the change stream.
    stay.forEach(({ c }, i) => expect(Ledger.received(c).length).toBe(seenAtCut[i]));

    await proxy.restore();
    const restoredAt = Date.now();
    const readyUpAfterMs = await waitStatus(fs.url, 200, 30_000);
    await ledger.write(6);
    let events = 0;
    for (const { flowId, c } of stay) events += await ledger.exactlyOnce(c, flowId);
    const deliveredAfterMs = Date.now() - restoredAt;
    await ledger.sentinel(mover, FLOWS[0]!);
    const moverAll = [...moverSeen, ...Ledger.received(mover)];
    expect(moverAll).toEqual(ledger.expected.get(FLOWS[0]!));
    events += moverAll.length;
    for (const { c } of stay) expect(c.ended, "the subscriber stayed connected through the outage").toBe(false);
    expect(fs.watcher.restarts).toBe(0);
    return { mode, outageMs: elapsed, writtenDuringOutage, events, heartbeatsDuringOutage, readyDownAfterMs, readyUpAfterMs, deliveredAfterMs };
  } finally {
    await Promise.all([...stay.map(({ c }) => c.close()), mover.close()]);
    await fs.stop();
    await writer.close();
    await proxy.close();
  }
}
