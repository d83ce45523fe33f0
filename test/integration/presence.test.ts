/**
 * Presence across flowsync instances on one database, with no broker: each instance writes
 * its own presence documents and learns the others' from its one change stream. Instances in
 * this process (startTestFlowsync) and, for a kill -9, a real child process (src/main.ts).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createFlowStore, subscribeFlow } from "flowsync-client";
import { flow$ } from "flowsync-client/rxjs";
import { SignJWT, decodeJwt, type JWTPayload } from "jose";
import { afterAll, describe, expect, it } from "vitest";
import type { Flowsync } from "../../src/flowsync";
import { uniqueDb, useBackend } from "../support/backend";
import { eventually } from "../support/eventually";
import { startTestFlowsync } from "../support/flowsync";
import { Ledger } from "../support/ledger";
import { spawnFlowsync, type FlowsyncProcess } from "../support/process";
import { SseClient } from "../support/sse-client";
import { TcpProxy } from "../support/tcp-proxy";

const SECRET = "a-test-secret-that-is-at-least-32-bytes-long";
const FLOW = "board";
const h = useBackend();
const running = new Set<{ stop(): Promise<unknown> }>();
const clients = new Set<SseClient>();

afterAll(async () => {
  await Promise.all([...clients].map((c) => c.close()));
  await Promise.all([...running].map((p) => p.stop()));
});

const ENV = { PRESENCE: "on", AUTH_JWT_SECRET: SECRET, PRESENCE_CLAIMS: "color" } as const;

async function start(dbName: string, env: Record<string, string> = {}): Promise<Flowsync> {
  const fs = await startTestFlowsync(h.backend.url, { MONGO_DB: dbName, ...ENV, ...env });
  running.add(fs);
  return fs;
}

function token(sub: string, claims: JWTPayload = {}): Promise<string> {
  return new SignJWT({ sub, flows: "*", ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
    .sign(new TextEncoder().encode(SECRET));
}

/** The token `join` uses: a name, a public claim (color) and a private one (email). */
const tokenOf = (sub: string) => token(sub, { name: sub.toUpperCase(), color: `#${sub}`, email: `${sub}@example.com` });

/** A subscriber of `flowId` on `base` (an instance's URL) as `sub`, once its stream is open. */
async function join(base: string, sub: string | undefined, query = "", flowId = FLOW, lastEventId?: string): Promise<SseClient> {
  const headers: Record<string, string> = sub ? { Authorization: `Bearer ${await tokenOf(sub)}` } : {};
  const c = new SseClient(`${base}/api/creative-flowboard/subscribe/${encodeURIComponent(flowId)}${query}`, { headers, lastEventId });
  clients.add(c);
  await c.opened();
  return c;
}

async function leave(c: SseClient): Promise<void> {
  await c.close();
  clients.delete(c);
}

interface PresenceFrame {
  id?: string;
  data: { flowId: string; users: Array<Record<string, unknown> & { id: string; connections: number }>; joined: string[]; left: string[] };
}

const frames = (c: SseClient): PresenceFrame[] => c.events().filter((e) => e.type === "PRESENCE") as unknown as PresenceFrame[];

/** The last list `c` got, as `id×connections`. */
const listed = (c: SseClient): string[] | undefined =>
  frames(c)
    .at(-1)
    ?.data.users.map((u) => `${u.id}×${u.connections}`);

/** Waits until the last PRESENCE frame `c` got lists exactly `want`. */
async function shows(c: SseClient, want: string[], timeoutMs = 10_000): Promise<void> {
  await c.until((x) => JSON.stringify(listed(x)) === JSON.stringify(want), timeoutMs, `presence ${want.join(",")} (last: ${listed(c)?.join(",")})`);
}

describe("presence across instances", () => {
  it("users on two instances see each other; tabs count as connections; ?presence=0 watches unlisted; only public claims leave", async () => {
    const dbName = uniqueDb("pres");
    const [a, b] = await Promise.all([start(dbName), start(dbName)]);
    const aliceOnA = await join(a.url, "alice");
    const aliceOnB = await join(b.url, "alice");
    const bobOnB = await join(b.url, "bob");
    const watcher = await join(a.url, "carol", "?presence=0");
    const want = ["alice×2", "bob×1"];
    for (const c of [aliceOnA, aliceOnB, bobOnB, watcher]) await shows(c, want);

    const alice = frames(watcher).at(-1)!.data.users[0]!;
    // sub → id; name and the listed claim (color) shown, in that form; nothing else from the token.
    expect(alice).toEqual({ id: "alice", name: "ALICE", color: "#alice", connections: 2 });
    for (const c of [aliceOnA, aliceOnB, bobOnB, watcher]) {
      expect(c.raw).not.toContain("example.com");
      expect(c.raw).not.toContain("carol");
      // No id: line on any PRESENCE frame: Last-Event-ID stays a document cursor.
      expect(frames(c).every((f) => f.id === undefined)).toBe(true);
      expect(c.raw).not.toMatch(/id: [^\n]*\nevent: PRESENCE/);
    }
    // The email claim was in the token, and is neither on the wire nor in the database.
    expect(decodeJwt(await tokenOf("alice")).email).toBe("alice@example.com");
    const docs = await h.client.db(dbName).collection("flowsync_presence").find({}).toArray();
    expect(docs.map((d) => d.flowId)).toEqual([FLOW, FLOW]);
    expect(JSON.stringify(docs)).not.toContain("example.com");

    // Tabs close: alice's count drops on both instances, then she leaves.
    await leave(aliceOnB);
    await shows(watcher, ["alice×1", "bob×1"]);
    await shows(bobOnB, ["alice×1", "bob×1"]);
    await leave(aliceOnA);
    await shows(watcher, ["bob×1"]);
    expect(frames(watcher).at(-1)!.data.left).toEqual(["alice"]);
    await shows(bobOnB, ["bob×1"]);

    await Promise.all([leave(bobOnB), leave(watcher)]);
    await Promise.all([a.stop(), b.stop()]);
  }, 60_000);

  it("stop() removes an instance's entries at once: the others drop its users long before the TTL could", async () => {
    const dbName = uniqueDb("pres");
    // A TTL far beyond this test's timeouts: if bob disappears at all, his instance removed him.
    const env = { PRESENCE_TTL_MS: "3600000" };
    const [a, b] = await Promise.all([start(dbName, env), start(dbName, env)]);
    const alice = await join(a.url, "alice");
    const bob = await join(b.url, "bob");
    await shows(alice, ["alice×1", "bob×1"]);
    await b.stop();
    running.delete(b);
    await shows(alice, ["alice×1"]);
    expect(frames(alice).at(-1)!.data.left).toEqual(["bob"]);
    expect(await h.client.db(dbName).collection("flowsync_presence").countDocuments()).toBe(1);
    expect(bob.ended).toBe(true);
    await leave(alice);
    await a.stop();
  }, 60_000);

  // The 2 × TTL bound itself is proven with fake timers (test/hub/presence.test.ts); here, a real kill -9.
  it("an instance killed with SIGKILL: its users disappear from the others (expired by the readers)", async () => {
    const dbName = uniqueDb("pres");
    const TTL = 3000;
    const a = await start(dbName, { PRESENCE_TTL_MS: String(TTL) });
    const child: FlowsyncProcess = await spawnFlowsync({
      MONGO_URL: h.backend.url,
      MONGO_DB: dbName,
      FILTERS_DIR: "./filters",
      CHANGE_STREAM_AWAIT_MS: "100",
      ...ENV,
      PRESENCE_TTL_MS: String(TTL),
    });
    running.add(child);
    const alice = await join(a.url, "alice");
    await join(child.url, "bob");
    await shows(alice, ["alice×1", "bob×1"]);
    const killedAt = Date.now();
    child.child.kill("SIGKILL");
    await new Promise((r) => child.child.once("exit", r));
    running.delete(child);
    await shows(alice, ["alice×1"]);
    const goneAfterMs = Date.now() - killedAt;
    console.log(`presence: a SIGKILLed instance's users were gone from the other after ${goneAfterMs} ms (PRESENCE_TTL_MS=${TTL})`);
    // Expired by the reader: the dead instance's document is still there (the TTL index cleans up later).
    const docs = await h.client.db(dbName).collection("flowsync_presence").find({}).toArray();
    expect(docs.map((d) => d.users[0].id).sort()).toEqual(["alice", "bob"]);
    expect(a.presence!.counters.expired).toBe(1);
    await leave(alice);
    await a.stop();
  }, 60_000);

  it("document events resume exactly while presence frames flow, and PRESENCE never moves the cursor", async () => {
    const dbName = uniqueDb("pres");
    const [a, b] = await Promise.all([start(dbName), start(dbName)]);
    const ledger = new Ledger(h.client.db(dbName).collection("nodes"), [FLOW]);
    const first = await join(a.url, "reader");
    // Churn on both instances while documents are written.
    let churning = true;
    const churn = (async () => {
      for (let i = 0; churning; i++) {
        const c = await join(i % 2 ? a.url : b.url, `u${i % 5}`);
        await new Promise((r) => setTimeout(r, 20));
        await leave(c);
      }
    })();
    await ledger.write(20, 5);
    await ledger.sentinel(first, FLOW);
    await leave(first);
    const cursor = first.lastEventId!;
    expect(first.messages.filter((m) => m.event !== "PRESENCE").at(-1)!.id).toBe(cursor);
    await ledger.write(20, 5); // missed while away
    const again = await join(b.url, "reader", "", FLOW, cursor);
    await ledger.write(10, 5);
    await ledger.sentinel(again, FLOW);
    churning = false;
    await churn;
    const got = [...Ledger.received(first), ...Ledger.received(again)];
    expect(got).toEqual(ledger.expected.get(FLOW));
    expect(again.events().filter((e) => e.type === "RESET")).toEqual([]);
    expect(frames(first).length + frames(again).length).toBeGreaterThan(2);
    expect([...frames(first), ...frames(again)].every((f) => f.id === undefined)).toBe(true);
    // Presence documents are not document events: none was published, none is in the replay buffer.
    expect(a.hub.typeCounts().get("PRESENCE")?.published ?? 0).toBe(0);
    expect(a.feed.counters.received).toBe(ledger.written + 2);
    await leave(again);
    await Promise.all([a.stop(), b.stop()]);
  }, 60_000);

  it("?types= without PRESENCE gets no presence frame (and is still listed); without auth each connection is its own anonymous user", async () => {
    const dbName = uniqueDb("pres");
    const fs = await start(dbName, { AUTH_JWT_SECRET: "" });
    const quiet = await join(fs.url, undefined, "?types=SYNC_CANVAS");
    const one = await join(fs.url, undefined);
    const two = await join(fs.url, undefined, "?types=SYNC_CANVAS,PRESENCE");
    await eventually("three anonymous users", () => expect(listed(two)?.length).toBe(3));
    const ids = frames(two)
      .at(-1)!
      .data.users.map((u) => u.id);
    expect(new Set(ids).size).toBe(3);
    expect(ids.every((id) => id.startsWith("anonymous-"))).toBe(true);
    await shows(one, listed(two)!);
    await h.client
      .db(dbName)
      .collection("nodes")
      .insertOne({ _id: "n1" as never, flowId: FLOW });
    await quiet.until((x) => x.events().some((e) => e.type === "SYNC_CANVAS"), 10_000, "the document event");
    expect(frames(quiet)).toEqual([]);
    for (const c of [quiet, one, two]) await leave(c);
    await fs.stop();
  }, 60_000);

  it("PRESENCE=off (the default): no presence collection, no write, no frame", async () => {
    const dbName = uniqueDb("pres");
    const fs = await start(dbName, { PRESENCE: "" });
    expect(fs.presence).toBeUndefined();
    const c = await join(fs.url, "alice");
    await new Ledger(h.client.db(dbName).collection("nodes"), [FLOW]).sentinel(c, FLOW);
    expect(frames(c)).toEqual([]);
    const names = (await h.client.db(dbName).listCollections().toArray()).map((x) => x.name);
    expect(names).toEqual(["nodes"]);
    expect(await (await fetch(`${fs.url}/metrics`)).text()).not.toMatch(/^flowsync_presence_writes_total [1-9]/m);
    await leave(c);
    await fs.stop();
  }, 60_000);

  it("counts presence writes and users present in /metrics, without flowId labels", async () => {
    const dbName = uniqueDb("pres");
    const fs = await start(dbName);
    const c = await join(fs.url, "alice");
    await eventually("a write", () => expect(fs.presence!.counters.writes).toBeGreaterThan(0));
    const text = await (await fetch(`${fs.url}/metrics`)).text();
    expect(text).toMatch(/^flowsync_presence_writes_total [1-9]/m);
    expect(text).toMatch(/^flowsync_presence_users\{scope="instance"\} 1$/m);
    expect(text).not.toMatch(/^flowsync_presence[^\n]*flowId/m);
    await leave(c);
    await fs.stop();
  }, 60_000);

  it("the client store's presence is the PRESENCE list (replaced by each frame, also across a reconnect); flow$ exposes it", async () => {
    const dbName = uniqueDb("pres");
    const [a, b] = await Promise.all([start(dbName), start(dbName)]);
    const bob = await join(b.url, "bob");
    const store = createFlowStore();
    const sub = subscribeFlow(a.url, FLOW, {}, { store, getToken: () => tokenOf("alice"), snapshot: false });
    const names = () => store.getState().presence.map((u) => `${u.id}:${u.name}×${u.connections}`);
    await eventually("alice and bob in the store", () => expect(names()).toEqual(["alice:ALICE×1", "bob:BOB×1"]));
    expect(store.getState().presence[0]).not.toHaveProperty("email");

    // An unlisted flow$ on the other instance sees the same list, without itself on it.
    const states: string[][] = [];
    const rx = flow$(FLOW, { baseUrl: b.url, getToken: () => tokenOf("carol"), presence: false, snapshot: false }).subscribe((s) =>
      states.push(s.presence.map((u) => u.id)),
    );
    await eventually("flow$ shows alice and bob", () => expect(states.at(-1)).toEqual(["alice", "bob"]));

    // Bob leaves while alice's client reconnects: its first frame after the reconnect is the list now.
    const before = sub.stats.reconnects;
    sub.reconnect(100);
    await leave(bob);
    await eventually("reconnected", () => expect(sub.stats.reconnects).toBe(before + 1));
    await eventually("only alice", () => expect(names()).toEqual(["alice:ALICE×1"]));
    await eventually("flow$ too", () => expect(states.at(-1)).toEqual(["alice"]));
    expect(states.flat()).not.toContain("carol");
    rx.unsubscribe();
    sub.close();
    await Promise.all([a.stop(), b.stop()]);
  }, 60_000);

  it("SIGTERM of a real process: its users are gone from the others at once (a TTL that cannot expire in the test)", async () => {
    const dbName = uniqueDb("pres");
    const env = { PRESENCE_TTL_MS: "3600000" };
    const a = await start(dbName, env);
    const child = await spawnFlowsync({ MONGO_URL: h.backend.url, MONGO_DB: dbName, FILTERS_DIR: "./filters", CHANGE_STREAM_AWAIT_MS: "100", ...ENV, ...env });
    running.add(child);
    // With ?snapshot=1: the SNAPSHOT first, the PRESENCE list right after it.
    const alice = await join(a.url, "alice", "?snapshot=1");
    await join(child.url, "bob");
    await shows(alice, ["alice×1", "bob×1"]);
    expect(alice.events().map((e) => e.type)[0]).toBe("SNAPSHOT");
    expect(alice.events().map((e) => e.type)[1]).toBe("PRESENCE");
    expect(await child.stop()).toBe(0);
    running.delete(child);
    await shows(alice, ["alice×1"]);
    expect(a.presence!.counters.expired).toBe(0);
    await leave(alice);
    await a.stop();
  }, 60_000);

  it("MongoDB unreachable from one instance: each lists its own users only, and the lists merge again once it is back", async () => {
    const dbName = uniqueDb("pres");
    const env = { PRESENCE_TTL_MS: "3000" };
    const proxy = await TcpProxy.start(h.backend.url.replace(/^mongodb:\/\//, "").split(/[/,?]/)[0]!);
    try {
      const a = await start(dbName, env);
      const b = await startTestFlowsync(proxy.url("connectTimeoutMS=2000&heartbeatFrequencyMS=500&serverSelectionTimeoutMS=2000"), {
        MONGO_DB: dbName,
        ...ENV,
        ...env,
      });
      running.add(b);
      const alice = await join(a.url, "alice");
      const bob = await join(b.url, "bob");
      for (const c of [alice, bob]) await shows(c, ["alice×1", "bob×1"]);

      await proxy.cut("refuse");
      // Nothing refreshes across the cut: each side's entry of the other expires, its own stays.
      await shows(bob, ["bob×1"]);
      await shows(alice, ["alice×1"]);
      await eventually("b's writes fail", () => expect(b.presence!.counters.writeErrors).toBeGreaterThan(0));

      await proxy.restore();
      for (const c of [alice, bob]) await shows(c, ["alice×1", "bob×1"], 30_000);
      await Promise.all([leave(alice), leave(bob)]);
      await Promise.all([a.stop(), b.stop()]);
    } finally {
      await proxy.close();
    }
  }, 90_000);

  it("an instance started later learns the entries that exist already (read once at start, not from a refresh)", async () => {
    const dbName = uniqueDb("pres");
    // Refreshes every 20 minutes: only the start-up read can tell the new instance about alice.
    const env = { PRESENCE_TTL_MS: "3600000" };
    const a = await start(dbName, env);
    const alice = await join(a.url, "alice");
    await eventually("alice's document", async () => expect(await h.client.db(dbName).collection("flowsync_presence").countDocuments()).toBe(1));
    const b = await start(dbName, env);
    const bob = await join(b.url, "bob");
    // The first frame bob gets already lists alice.
    await bob.until((x) => frames(x).length > 0, 10_000, "bob's first PRESENCE");
    expect(frames(bob)[0]!.data.users.map((u) => u.id)).toEqual(["alice", "bob"]);
    await shows(alice, ["alice×1", "bob×1"]);
    await Promise.all([leave(alice), leave(bob)]);
    await Promise.all([a.stop(), b.stop()]);
  }, 60_000);
});

describe("a subscriber that leaves before its stream opens", () => {
  it("during a slow ?snapshot=1: never listed, and its admission slot is given back", async () => {
    const appName = `presence-early-${uniqueDb()}`;
    const url = new URL(h.backend.url);
    url.searchParams.set("appName", appName);
    const fs = await startTestFlowsync(url.toString(), { MONGO_DB: uniqueDb("pe"), ...ENV });
    running.add(fs);
    const observer = await join(fs.url, "watcher", "?presence=0");
    await shows(observer, []);
    const held = async () =>
      (
        await h.client
          .db("admin")
          .aggregate([{ $currentOp: { allUsers: true } }, { $match: { appName, "command.find": { $exists: true } } }])
          .toArray()
      ).length;
    // Holds the snapshot's first read at the server, so the client can leave while flowsync awaits it.
    await h.client.db("admin").command({
      configureFailPoint: "failCommand",
      mode: { times: 1 },
      data: { failCommands: ["find"], blockConnection: true, blockTimeMS: 1500, appName },
    });
    const ac = new AbortController();
    const request = fetch(`${fs.url}/api/creative-flowboard/subscribe/${FLOW}?snapshot=1`, {
      headers: { Authorization: `Bearer ${await tokenOf("ghost")}` },
      signal: ac.signal,
    }).catch(() => undefined);
    await eventually("the snapshot's read held at the server", async () => (await held()) === 1);
    ac.abort();
    await request;
    await eventually("the held read answered", async () => (await held()) === 0);
    // Only the observer's slot is left once the aborted request's handler has run to its end.
    await eventually("the slot given back", () => expect(fs.limits.streamsOf("127.0.0.1")).toBe(1));
    // A later user's join is a sentinel: frames come in order, so the list it brings is complete.
    const late = await join(fs.url, "late");
    await shows(observer, ["late×1"]);
    expect(frames(observer).flatMap((f) => f.data.joined)).not.toContain("ghost");
    await leave(late);
  });
});

describe("presence and the filters share one change stream", () => {
  it("PRESENCE_COLLECTION may not be a filtered collection", async () => {
    await expect(startTestFlowsync(h.backend.url, { MONGO_DB: uniqueDb("pc"), ...ENV, PRESENCE_COLLECTION: "nodes" })).rejects.toMatchObject({
      code: "E_CONFIG_INVALID",
      message: expect.stringContaining("PRESENCE_COLLECTION: 'nodes' is a filtered collection"),
    });
  });

  it("a private field named like a presence document's field is refused (its $unset would empty every presence document)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "flowsync-presence-filters-"));
    try {
      await writeFile(path.join(dir, "rooms.json"), JSON.stringify({ collection: "rooms", event: "SYNC_CANVAS", entity: "room", privateFields: ["users"] }));
      await expect(startTestFlowsync(h.backend.url, { MONGO_DB: uniqueDb("pc"), ...ENV, FILTERS_DIR: dir })).rejects.toMatchObject({
        code: "E_CONFIG_INVALID",
        message: expect.stringContaining("private field(s) users would also be removed from presence documents"),
      });
      // Without presence the same filter is fine.
      const fs = await startTestFlowsync(h.backend.url, { MONGO_DB: uniqueDb("pc"), FILTERS_DIR: dir });
      await fs.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
