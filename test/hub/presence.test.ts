/**
 * The Presence owner on its own, with a store in memory and fake timers: the write
 * debounce under churn, the refresh, the expiry of entries nobody refreshes, degraded
 * mode, and that stop() releases every timer and removes this instance's documents.
 */
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Presence, type PresenceDoc, type PresenceStore } from "../../src/hub/presence";
import type { ChangeStreamDocument } from "mongodb";

const FLOW = "f1";
const TTL = 3000;

class MemoryStore implements PresenceStore {
  readonly docs = new Map<string, PresenceDoc>();
  readonly log: Array<{ at: number; op: "put" | "remove"; ids: string[] }> = [];
  failing = false;
  async put(doc: PresenceDoc): Promise<void> {
    if (this.failing) throw new Error("unreachable");
    this.log.push({ at: Date.now(), op: "put", ids: [doc._id] });
    this.docs.set(doc._id, structuredClone(doc));
  }
  async remove(ids: readonly string[]): Promise<void> {
    if (this.failing) throw new Error("unreachable");
    this.log.push({ at: Date.now(), op: "remove", ids: [...ids] });
    for (const id of ids) this.docs.delete(id);
  }
  async readAll(): Promise<unknown[]> {
    if (this.failing) throw new Error("unreachable");
    return [...this.docs.values()].map((d) => structuredClone(d));
  }
}

function make(store: PresenceStore, instance = "i1") {
  const frames: Array<{ flowId: string; data: { users: Array<{ id: string; connections: number }>; joined: string[]; left: string[] } }> = [];
  const presence = new Presence({
    instance,
    store,
    ttlMs: TTL,
    send: (flowId, frame) => frames.push({ flowId, data: JSON.parse(/^data: (.*)$/m.exec(frame)![1]!) }),
    audience: () => 1,
    logger: pino({ level: "silent" }),
  });
  const users = () => frames.at(-1)?.data.users.map((u) => `${u.id}×${u.connections}`);
  return { presence, frames, users };
}

/** A change event of another instance's document, as the change stream hands it over. */
function changeOf(doc: PresenceDoc | { _id: string }, op: "replace" | "delete" = "replace"): ChangeStreamDocument {
  return (op === "delete"
    ? { operationType: "delete", documentKey: { _id: doc._id }, ns: { db: "d", coll: "flowsync_presence" } }
    : {
        operationType: "replace",
        documentKey: { _id: doc._id },
        fullDocument: doc,
        ns: { db: "d", coll: "flowsync_presence" },
      }) as unknown as ChangeStreamDocument;
}

const remoteDoc = (instance: string, ids: string[], at = Date.now()): PresenceDoc => ({
  _id: `${instance}:${FLOW}`,
  instance,
  flowId: FLOW,
  users: ids.map((id) => ({ id, connections: 1 })),
  refreshedAt: new Date(at),
  expiresAt: new Date(at + TTL),
});

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("Presence", () => {
  it("writes one flow at most once per second whatever the churn, and refreshes it within the TTL", async () => {
    const store = new MemoryStore();
    const { presence } = make(store);
    await presence.start();
    const stay = presence.join(FLOW, { id: "stays" });
    // 1,000 joins and leaves per second for 10 s.
    for (let ms = 0; ms < 10_000; ms++) {
      const leave = presence.join(FLOW, { id: `u${ms % 50}` });
      await vi.advanceTimersByTimeAsync(1);
      leave();
    }
    await vi.advanceTimersByTimeAsync(2000);
    const puts = store.log.filter((w) => w.op === "put").map((w) => w.at);
    expect(puts.length).toBeGreaterThan(5);
    expect(puts.length).toBeLessThanOrEqual(13);
    for (let i = 1; i < puts.length; i++) expect(puts[i]! - puts[i - 1]!).toBeGreaterThanOrEqual(1000);
    // The last write holds the state after the churn: only the user who stayed.
    expect(store.docs.get(`i1:${FLOW}`)!.users).toEqual([{ id: "stays", connections: 1 }]);

    // Quiet: refreshed every TTL/3, so the document never gets older than the TTL.
    const before = store.log.length;
    await vi.advanceTimersByTimeAsync(TTL * 3);
    const refreshes = store.log.slice(before).map((w) => w.at);
    expect(refreshes.length).toBeGreaterThanOrEqual(3);
    expect(Date.now() - store.docs.get(`i1:${FLOW}`)!.refreshedAt.getTime()).toBeLessThan(TTL);
    stay();
    await vi.advanceTimersByTimeAsync(1000);
    // The last user left: the document goes, and no refresh follows.
    expect(store.docs.size).toBe(0);
    const settled = store.log.length;
    await vi.advanceTimersByTimeAsync(TTL * 3);
    expect(store.log.length).toBe(settled);
    await presence.stop();
  });

  it("merges other instances' users, counts connections across instances, and drops an entry nobody refreshes within the TTL", async () => {
    const store = new MemoryStore();
    const { presence, users, frames } = make(store);
    await presence.start();
    presence.join(FLOW, { id: "alice" });
    presence.handle(changeOf(remoteDoc("i2", ["alice", "bob"])));
    await vi.advanceTimersByTimeAsync(100);
    expect(users()).toEqual(["alice×2", "bob×1"]);
    expect(frames.at(-1)!.data.joined).toEqual(["alice", "bob"]);

    // i2 stops refreshing (killed): its users go after the TTL, within 1.25 × TTL.
    await vi.advanceTimersByTimeAsync(TTL);
    expect(users()).toEqual(["alice×2", "bob×1"]);
    await vi.advanceTimersByTimeAsync(TTL / 4 + 100);
    expect(users()).toEqual(["alice×1"]);
    expect(frames.at(-1)!.data.left).toEqual(["bob"]);
    expect(presence.counters.expired).toBe(1);

    // A removal (i2 stopped cleanly) takes effect at once.
    presence.handle(changeOf(remoteDoc("i3", ["carol"])));
    await vi.advanceTimersByTimeAsync(100);
    expect(users()).toEqual(["alice×1", "carol×1"]);
    presence.handle(changeOf({ _id: `i3:${FLOW}` }, "delete"));
    await vi.advanceTimersByTimeAsync(100);
    expect(users()).toEqual(["alice×1"]);
    await presence.stop();
  });

  it("learns existing entries at start, and skips an invalid document (counted)", async () => {
    const store = new MemoryStore();
    store.docs.set(`i2:${FLOW}`, remoteDoc("i2", ["bob"]));
    // Written by a dead instance long ago: not listed.
    store.docs.set(`i9:${FLOW}`, remoteDoc("i9", ["ghost"], Date.now() - 2 * TTL));
    const { presence } = make(store);
    await presence.start();
    expect(JSON.parse(/^data: (.*)$/m.exec(presence.initialFrame(FLOW))![1]!).users).toEqual([{ id: "bob", connections: 1 }]);
    presence.handle(changeOf({ ...remoteDoc("i4", []), users: [{ id: "x", connections: "many" }] } as unknown as PresenceDoc));
    expect(presence.counters.invalid).toBe(1);
    await presence.stop();
  });

  it("MongoDB unreachable: lists its own users, keeps retrying, and writes again once it is back", async () => {
    const store = new MemoryStore();
    const { presence, users } = make(store);
    await presence.start();
    presence.handle(changeOf(remoteDoc("i2", ["bob"])));
    store.failing = true;
    presence.join(FLOW, { id: "alice" });
    await vi.advanceTimersByTimeAsync(100);
    expect(users()).toEqual(["alice×1", "bob×1"]);
    // No refresh from i2 arrives while the database is away: its entry expires, ours stays.
    await vi.advanceTimersByTimeAsync(2 * TTL);
    expect(users()).toEqual(["alice×1"]);
    expect(presence.counters.writeErrors).toBeGreaterThan(0);
    expect(store.docs.size).toBe(0);
    store.failing = false;
    await vi.advanceTimersByTimeAsync(1100);
    expect(store.docs.get(`i1:${FLOW}`)!.users).toEqual([{ id: "alice", connections: 1 }]);
    await presence.stop();
  });

  it("stop() removes this instance's documents and leaves no timer behind", async () => {
    const store = new MemoryStore();
    const { presence } = make(store);
    await presence.start();
    presence.join(FLOW, { id: "alice" });
    presence.join("f2", { id: "bob" });
    await vi.advanceTimersByTimeAsync(100);
    expect([...store.docs.keys()].sort()).toEqual(["i1:f1", "i1:f2"]);
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    await presence.stop();
    expect(store.docs.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    // Stopped means stopped: a late leave or join writes nothing and arms nothing.
    presence.join(FLOW, { id: "late" })();
    expect(vi.getTimerCount()).toBe(0);
    await presence.stop();
  });

  it("stop() with MongoDB away waits at most 2 s for the removal, and leaves no timer behind", async () => {
    const store = new MemoryStore();
    const { presence } = make(store);
    await presence.start();
    presence.join(FLOW, { id: "alice" });
    await vi.advanceTimersByTimeAsync(100);
    // A removal that never answers (the driver waiting for a server).
    store.remove = () => new Promise<void>(() => {});
    let done = false;
    const stopped = presence.stop().then(() => (done = true));
    await vi.advanceTimersByTimeAsync(1900);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    await stopped;
    expect(done).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("Presence.reload (after a stream restart)", () => {
  it("drops what the read no longer holds (a delete the stream missed), keeps what the stream reported meanwhile", async () => {
    const store = new MemoryStore();
    const { presence, users } = make(store);
    await presence.start();
    presence.handle(changeOf(remoteDoc("gone", ["ann"])));
    presence.handle(changeOf(remoteDoc("kept", ["bob"])));
    presence.join(FLOW, { id: "me" });
    await vi.advanceTimersByTimeAsync(100);
    expect(users()).toEqual(["ann×1", "bob×1", "me×1"]);
    // Only "kept" is stored: "gone" stopped cleanly while the stream was down (its delete never came).
    store.docs.set("kept:f1", remoteDoc("kept", ["bob"]));
    // A reload whose read is answered after the stream has reported a newer "late" entry.
    let answer!: () => void;
    const read = store.readAll.bind(store);
    store.readAll = () => new Promise((resolve) => (answer = () => resolve(read())));
    const reloading = presence.reload();
    presence.handle(changeOf(remoteDoc("late", ["cat"])));
    answer();
    await reloading;
    await vi.advanceTimersByTimeAsync(100);
    expect(users()).toEqual(["bob×1", "cat×1", "me×1"]);
    await presence.stop();
  });
});

describe("Presence.stop with a write in flight", () => {
  it("waits for it before removing, so the write cannot land after the removal and outlive the instance", async () => {
    const store = new MemoryStore();
    const put = store.put.bind(store);
    let land!: () => void;
    store.put = (doc) => new Promise<void>((resolve) => (land = () => void put(doc).then(resolve)));
    const { presence } = make(store);
    await presence.start();
    presence.join(FLOW, { id: "me" });
    await vi.advanceTimersByTimeAsync(1100);
    expect(land).toBeTypeOf("function"); // the write is at the server
    const stopping = presence.stop();
    await vi.advanceTimersByTimeAsync(10);
    land();
    await vi.advanceTimersByTimeAsync(10);
    await stopping;
    expect([...store.docs.keys()]).toEqual([]);
  });
});
