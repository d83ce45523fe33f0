/**
 * Standalone mode (`replicaSet: false`), a simulator-only knob: a real standalone
 * mongod is a separate deployment that the shared test mongod is not, so these
 * tests run on the simulator only. They pin down what flowsync's startup check
 * relies on: no setName in hello, and $changeStream refused with 40573.
 */
import { describe, expect, it } from "vitest";
import { coll, expectCode, isSim, topologyOf, useBackend } from "./helpers";

describe.runIf(isSim)("standalone simulator (replicaSet: false)", () => {
  const h = useBackend({ replicaSet: false });

  it("is seen as a standalone server, not a replica-set member", async () => {
    const hello = await h.client.db("admin").command({ hello: 1 });
    expect(hello.setName).toBeUndefined();
    expect(hello.isWritablePrimary).toBe(true);
    const description = await topologyOf(h.backend.url);
    expect(description.type).toBe("Single");
    expect([...description.servers.values()][0]!.type).toBe("Standalone");
  });

  it("still serves CRUD", async () => {
    const c = coll(h.client.db("standalone"), "c");
    await c.insertOne({ _id: 1 });
    expect(await c.findOne({ _id: 1 })).toEqual({ _id: 1 });
  });

  it("refuses change streams with error 40573", async () => {
    const stream = h.client.db("standalone").collection("c").watch();
    try {
      await expectCode(stream.tryNext(), 40573);
    } finally {
      await stream.close();
    }
  });
});
