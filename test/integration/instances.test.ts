/**
 * The cursor outlives the process: it is the change stream's resume token. So a
 * client can move to another flowsync process on the same database, or come
 * back to a restarted one, with its last id, and get exactly what it missed —
 * from that process's memory when it was already running, or from MongoDB
 * (a catch-up stream) when its memory starts after the cursor.
 * Real processes (`src/main.ts` in children), as operators run them.
 */
import { afterAll, describe, expect, it } from "vitest";
import { uniqueDb, useBackend } from "../support/backend";
import { Ledger } from "../support/ledger";
import { spawnFlowsync, type FlowsyncProcess } from "../support/process";
import { SseClient } from "../support/sse-client";

const FLOW = "moving";
const h = useBackend();
const running = new Set<FlowsyncProcess>();

afterAll(async () => {
  await Promise.all([...running].map((p) => p.stop()));
});

async function start(dbName: string): Promise<FlowsyncProcess> {
  const p = await spawnFlowsync({ MONGO_URL: h.backend.url, MONGO_DB: dbName, FILTERS_DIR: "./filters", CHANGE_STREAM_AWAIT_MS: "100" });
  running.add(p);
  return p;
}

async function stop(p: FlowsyncProcess): Promise<number | null> {
  const code = await p.stop();
  running.delete(p);
  return code;
}

function subscribe(p: FlowsyncProcess, lastEventId?: string): SseClient {
  return new SseClient(`${p.url}/api/creative-flowboard/subscribe/${FLOW}`, { lastEventId });
}

/** Waits for a sentinel on `c` (everything written before it has come by then), then closes it; returns its ids and its last cursor. */
async function take(c: SseClient, ledger: Ledger): Promise<{ ids: string[]; last: string }> {
  await ledger.sentinel(c, FLOW, 20_000);
  await c.close();
  expect(c.events().filter((e) => e.type === "RESET")).toEqual([]);
  return { ids: Ledger.received(c), last: c.lastEventId! };
}

/** flowsync_replays_total by source, from the process's /metrics. */
async function replays(p: FlowsyncProcess): Promise<{ memory: number; mongo: number }> {
  const text = await (await fetch(`${p.url}/metrics`)).text();
  const value = (source: string) => Number(new RegExp(`^flowsync_replays_total\\{source="${source}"\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
  return { memory: value("memory"), mongo: value("mongodb") };
}

describe("the cursor outlives the process", () => {
  it("two processes on one database: a client moves from one to the other with its last id and gets exactly what it missed", async () => {
    const dbName = uniqueDb("inst");
    const ledger = new Ledger(h.client.db(dbName).collection("nodes"), [FLOW]);
    const [a, b] = await Promise.all([start(dbName), start(dbName)]);

    const onA = subscribe(a);
    await onA.opened();
    await ledger.write(10);
    const first = await take(onA, ledger);

    await ledger.write(10); // missed while moving
    // To B, which has run all along: served from its memory.
    const onB = subscribe(b, first.last);
    await ledger.write(5); // live on B
    const second = await take(onB, ledger);
    expect([...first.ids, ...second.ids]).toEqual(ledger.expected.get(FLOW));

    await ledger.write(10); // missed again
    // To C, started after all of that: its memory begins after the cursor, so it catches up from MongoDB.
    const c = await start(dbName);
    const onC = subscribe(c, second.last);
    await ledger.write(5);
    const third = await take(onC, ledger);
    expect([...first.ids, ...second.ids, ...third.ids]).toEqual(ledger.expected.get(FLOW));
    expect(ledger.written).toBe(40);
    // Where each resume was served from, as each process counts it.
    expect(await replays(b)).toEqual({ memory: 1, mongo: 0 });
    expect(await replays(c)).toEqual({ memory: 0, mongo: 1 });
    await Promise.all([stop(a), stop(b), stop(c)]);
  }, 120_000);

  it("a restart of flowsync: the client reconnects to the new process with its last id and gets exactly what it missed", async () => {
    const dbName = uniqueDb("inst");
    const ledger = new Ledger(h.client.db(dbName).collection("nodes"), [FLOW]);
    const before = await start(dbName);
    const c1 = subscribe(before);
    await c1.opened();
    await ledger.write(10);
    await c1.until((x) => Ledger.received(x).length === 10, 20_000, "10 events");

    // SIGTERM: the stream ends (the client would reconnect), the process exits 0.
    expect(await stop(before)).toBe(0);
    await c1.until((x) => x.ended, 5000, "the stream's end");
    const first = { ids: Ledger.received(c1), last: c1.lastEventId! };

    await ledger.write(10); // while no flowsync runs
    const after = await start(dbName);
    const c2 = subscribe(after, first.last);
    await ledger.write(5);
    const second = await take(c2, ledger);
    expect([...first.ids, ...second.ids]).toEqual(ledger.expected.get(FLOW));
    expect(second.ids).toHaveLength(15 + 1); // and the sentinel
    await stop(after);
  }, 120_000);
});
