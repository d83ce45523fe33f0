/** Handshake and topology: the driver sees a writable replica-set primary with sessions. */
import { describe, expect, it } from "vitest";
import { Timestamp } from "mongodb";
import { coll, topologyOf, uniqueDb, useBackend } from "./helpers";

describe("handshake and topology", () => {
  const h = useBackend();

  it("is seen by the driver as the primary of a replica set", async () => {
    const description = await topologyOf(h.backend.url);
    expect(description.type).toBe("ReplicaSetWithPrimary");
    const servers = [...description.servers.values()];
    expect(servers.map((s) => s.type)).toEqual(["RSPrimary"]);
    expect(servers[0]!.setName).toBeTruthy();
    expect(servers[0]!.logicalSessionTimeoutMinutes).toBeGreaterThan(0);
  });

  it("answers hello as a writable primary that lists itself in hosts", async () => {
    const hello = await h.client.db("admin").command({ hello: 1 });
    expect(hello.isWritablePrimary).toBe(true);
    expect(typeof hello.setName).toBe("string");
    expect(hello.hosts).toContain(hello.me);
    expect(hello.maxWireVersion).toBeGreaterThanOrEqual(21);
  });

  it("answers ping with ok:1 and gossips $clusterTime / operationTime", async () => {
    const reply = await h.client.db("admin").command({ ping: 1 });
    expect(reply.ok).toBe(1);
    expect(reply.$clusterTime?.clusterTime).toBeInstanceOf(Timestamp);
    expect(reply.operationTime).toBeInstanceOf(Timestamp);
  });

  it("reports buildInfo with a version string and matching versionArray", async () => {
    const info = await h.client.db("admin").command({ buildInfo: 1 });
    expect(info.versionArray).toHaveLength(4);
    expect(info.version.startsWith(info.versionArray.slice(0, 3).join("."))).toBe(true);
    expect(info.versionArray[0]).toBeGreaterThanOrEqual(7);
  });

  it("supports explicit sessions (lsid sent, causal reads work)", async () => {
    const c = coll(h.client.db(uniqueDb()), "c");
    const session = h.client.startSession({ causalConsistency: true });
    try {
      await c.insertOne({ _id: 1 }, { session });
      expect(session.operationTime).toBeInstanceOf(Timestamp);
      expect(await c.findOne({ _id: 1 }, { session })).toEqual({ _id: 1 });
      expect(session.id?.id).toBeDefined();
    } finally {
      await session.endSession();
    }
  });

  it("advances cluster time with each write", async () => {
    const db = h.client.db(uniqueDb());
    const a = await db.command({ insert: "c", documents: [{ x: 1 }] });
    const b = await db.command({ insert: "c", documents: [{ x: 2 }] });
    expect(b.operationTime.greaterThan(a.operationTime)).toBe(true);
  });
});
