import { describe, expect, it } from "vitest";
import { UnimplementedError } from "../../scripts/conformance/errors.js";
import { compareVersions, evaluateRequirements, parseVersion, type ServerInfo } from "../../scripts/conformance/requirements.js";
import { topologyFromHello, urlHasAuth, versionFromBuildInfo } from "../../scripts/conformance/server-info.js";

function server(partial: Partial<ServerInfo> = {}): ServerInfo {
  return {
    version: [7, 0, 4],
    topology: "replicaset",
    serverless: false,
    auth: false,
    secondaries: 0,
    serverParameters: async () => ({ featureCompatibilityVersion: { version: "7.0" }, someLimit: 10 }),
    ...partial,
  };
}

describe("version strings", () => {
  it("fills missing components with zero and drops suffixes", () => {
    expect(parseVersion("4.2")).toEqual([4, 2, 0]);
    expect(parseVersion("4")).toEqual([4, 0, 0]);
    expect(parseVersion("4.9.0-alpha4-271-g7d5cf02")).toEqual([4, 9, 0]);
  });

  it("compares numerically, component by component", () => {
    expect(compareVersions(parseVersion("4.0.10"), parseVersion("4.0.9"))).toBe(1);
    expect(compareVersions(parseVersion("3.6"), parseVersion("4.2.0"))).toBe(-1);
    expect(compareVersions(parseVersion("4.2"), parseVersion("4.2.0"))).toBe(0);
  });

  it("reads the version from buildInfo.versionArray, ignoring the rest", () => {
    expect(versionFromBuildInfo({ version: "8.0.1-rc0", versionArray: [8, 0, 1, -100] })).toEqual([8, 0, 1]);
    expect(() => versionFromBuildInfo({ version: "8.0.1" })).toThrow(/versionArray/);
  });
});

describe("runOnRequirements", () => {
  it("is satisfied when absent or empty", async () => {
    expect(await evaluateRequirements(undefined, server())).toEqual({ ok: true });
    expect(await evaluateRequirements([], server())).toEqual({ ok: true });
  });

  it("checks min and max server versions inclusively", async () => {
    expect((await evaluateRequirements([{ minServerVersion: "7.0.4" }], server())).ok).toBe(true);
    expect((await evaluateRequirements([{ minServerVersion: "7.0.5" }], server())).ok).toBe(false);
    expect((await evaluateRequirements([{ maxServerVersion: "7.0.4" }], server())).ok).toBe(true);
    expect((await evaluateRequirements([{ maxServerVersion: "4.2.99" }], server())).ok).toBe(false);
    expect((await evaluateRequirements([{ minServerVersion: "6.1.0", maxServerVersion: "8.1.99" }], server())).ok).toBe(true);
  });

  it("says why, naming the requirement and the backend", async () => {
    const verdict = await evaluateRequirements([{ maxServerVersion: "4.2.99" }], server());
    expect(verdict).toEqual({ ok: false, reason: '{"maxServerVersion":"4.2.99"}: server 7.0.4 > maxServerVersion 4.2.99' });
    const topo = await evaluateRequirements([{ topologies: ["single"] }], server());
    expect(topo.ok ? "" : topo.reason).toMatch(/topology replicaset not in \[single\]/);
  });

  it("is satisfied when ANY entry is", async () => {
    const reqs = [{ minServerVersion: "9.0" }, { topologies: ["replicaset"] }];
    expect((await evaluateRequirements(reqs, server())).ok).toBe(true);
    const none = await evaluateRequirements([{ minServerVersion: "9.0" }, { topologies: ["sharded"] }], server());
    expect(none.ok).toBe(false);
    expect(none.ok ? "" : none.reason).toContain(";");
  });

  it("needs every key of one entry", async () => {
    expect((await evaluateRequirements([{ minServerVersion: "3.6", topologies: ["sharded"] }], server())).ok).toBe(false);
  });

  it("matches topologies, with sharded-replicaset implied by sharded", async () => {
    expect((await evaluateRequirements([{ topologies: ["replicaset", "sharded"] }], server())).ok).toBe(true);
    expect((await evaluateRequirements([{ topologies: ["sharded-replicaset"] }], server({ topology: "sharded" }))).ok).toBe(true);
    expect((await evaluateRequirements([{ topologies: ["replicaset"] }], server({ topology: "single" }))).ok).toBe(false);
  });

  it("handles serverless and auth", async () => {
    expect((await evaluateRequirements([{ serverless: "forbid" }], server())).ok).toBe(true);
    expect((await evaluateRequirements([{ serverless: "require" }], server())).ok).toBe(false);
    expect((await evaluateRequirements([{ serverless: "allow" }], server())).ok).toBe(true);
    expect((await evaluateRequirements([{ auth: true }], server())).ok).toBe(false);
    expect((await evaluateRequirements([{ auth: false }], server())).ok).toBe(true);
    expect((await evaluateRequirements([{ auth: true }], server({ auth: true }))).ok).toBe(true);
  });

  it("compares serverParameters with flexible numerics; missing means not met", async () => {
    expect((await evaluateRequirements([{ serverParameters: { someLimit: 10.0 } }], server())).ok).toBe(true);
    expect((await evaluateRequirements([{ serverParameters: { someLimit: 11 } }], server())).ok).toBe(false);
    expect((await evaluateRequirements([{ serverParameters: { missing: true } }], server())).ok).toBe(false);
    expect((await evaluateRequirements([{ serverParameters: { someLimit: 10 } }], server({ serverParameters: async () => undefined }))).ok).toBe(false);
  });

  it("fails loudly on a requirement key it does not know", async () => {
    await expect(evaluateRequirements([{ newThing: true }], server())).rejects.toThrow(UnimplementedError);
  });
});

describe("backend description", () => {
  it("classifies topology from hello", () => {
    expect(topologyFromHello({ setName: "rs0", isWritablePrimary: true }, "mongodb://h")).toBe("replicaset");
    expect(topologyFromHello({ isWritablePrimary: true }, "mongodb://h")).toBe("single");
    expect(topologyFromHello({ msg: "isdbgrid" }, "mongodb://h")).toBe("sharded");
    expect(topologyFromHello({ msg: "isdbgrid" }, "mongodb://h/?loadBalanced=true")).toBe("load-balanced");
    expect(() => topologyFromHello({ setName: "rs0", secondary: true }, "mongodb://h")).toThrow(/no primary/);
  });

  it("detects credentials in the URL", () => {
    expect(urlHasAuth("mongodb://u:p@h:1/?x=1")).toBe(true);
    expect(urlHasAuth("mongodb://h:1/?authSource=a@b")).toBe(false);
  });
});
