/**
 * The connection state machine alone: pure transitions, no transport, no timers.
 */
import { describe, expect, it } from "vitest";
import { initialMachine, TABLE, transition, type ConnectionEvent, type Effect, type Machine } from "../../packages/client/src/connection";
import { FlowsyncClientError } from "../../packages/client/src/errors";

function run(events: ConnectionEvent[], m: Machine = initialMachine(undefined, 1000)) {
  const effects: Effect[] = [];
  for (const e of events) {
    const step = transition(m, e);
    m = step.machine;
    effects.push(...step.effects);
  }
  return { m, effects };
}

const http = (status: number, reason: "forbidden" | "rejected" | "http" | "unauthorized") => new FlowsyncClientError(`HTTP ${status}`, { reason, status });

describe("connection state machine", () => {
  it("snapshot first, then subscribes from its cursor; open resets the attempt count", () => {
    const { m, effects } = run([{ type: "start", fetchSnapshot: true }, { type: "fetched", cursor: "S1" }, { type: "opened" }]);
    expect(effects).toEqual([
      { type: "fetchSnapshot", reason: "initial" },
      { type: "openStream", from: "S1" },
      { type: "state", state: "open", error: undefined },
    ]);
    expect(m).toMatchObject({ phase: { kind: "open" }, status: "open", lastEventId: "S1", attempt: 0, opens: 1 });
  });

  it("a drop backs off from the server's retry hint, growing the attempt; the next open counts as a reconnect", () => {
    const { m, effects } = run([
      { type: "start", fetchSnapshot: false },
      { type: "opened" },
      { type: "retryHint", ms: 20 },
      { type: "cursor", id: "c1" },
      { type: "ended", error: undefined },
      { type: "timer" },
      { type: "ended", error: http(503, "http") },
      { type: "timer" },
    ]);
    expect(effects.filter((e) => e.type === "backoff" || e.type === "openStream")).toEqual([
      { type: "openStream", from: undefined },
      { type: "backoff", attempt: 0, initialMs: 20 },
      { type: "openStream", from: "c1" },
      { type: "backoff", attempt: 1, initialMs: 20 },
      { type: "openStream", from: "c1" },
    ]);
    expect(m.attempt).toBe(2);
    const opened = transition(m, { type: "opened" }).machine;
    expect(opened).toMatchObject({ attempt: 0, opens: 2, status: "open" });
  });

  it("RESET: no resume before a snapshot is applied, even through a reconnect", () => {
    const { m, effects } = run([
      { type: "start", fetchSnapshot: false },
      { type: "opened" },
      { type: "reset" },
      { type: "reconnect", delayMs: 0 },
      { type: "timer" },
    ]);
    expect(effects.filter((e) => e.type !== "state")).toEqual([
      { type: "openStream", from: undefined },
      { type: "fetchSnapshot", reason: "reset" },
      { type: "wait", delayMs: 0 },
      { type: "fetchSnapshot", reason: "reset" },
    ]);
    expect(m).toMatchObject({ needsSnapshot: true, phase: { kind: "snapshot", reason: "reset" } });
    expect(effects.filter((e) => e.type === "state").map((e) => e.type === "state" && e.state)).toEqual(["open", "resyncing", "reconnecting", "resyncing"]);
  });

  it("a failed snapshot is reported and retried with backoff; a fatal one closes with the error", () => {
    const err = http(503, "http");
    const retried = run([{ type: "start", fetchSnapshot: true }, { type: "fetchFailed", error: err }, { type: "timer" }]);
    expect(retried.effects).toEqual([
      { type: "fetchSnapshot", reason: "initial" },
      { type: "state", state: "connecting", error: err },
      { type: "report", error: err },
      { type: "backoff", attempt: 0, initialMs: 1000 },
      { type: "fetchSnapshot", reason: "initial" },
    ]);
    const fatal = http(404, "rejected");
    const closed = run([
      { type: "start", fetchSnapshot: true },
      { type: "fetchFailed", error: fatal },
    ]);
    expect(closed.effects.slice(1)).toEqual([{ type: "stop" }, { type: "state", state: "closed", error: fatal }, { type: "report", error: fatal }]);
    expect(closed.m.phase.kind).toBe("closed");
  });

  it("401 is retried (a fresh token may help), 403 is not", () => {
    const base = run([{ type: "start", fetchSnapshot: false }]).m;
    expect(transition(base, { type: "ended", error: http(401, "unauthorized") }).machine.phase).toEqual({ kind: "waiting", then: "connect" });
    expect(transition(base, { type: "ended", error: http(403, "forbidden") }).machine.phase).toEqual({ kind: "closed" });
  });

  it("EventSource reconnecting by itself shows as reconnecting, then open again", () => {
    const { effects } = run([{ type: "start", fetchSnapshot: false }, { type: "opened" }, { type: "interrupted" }, { type: "opened" }]);
    expect(effects.filter((e) => e.type === "state").map((e) => e.type === "state" && e.state)).toEqual(["open", "reconnecting", "open"]);
  });

  it("closed absorbs everything; close is idempotent", () => {
    const closed = run([{ type: "start", fetchSnapshot: false }, { type: "close" }]);
    expect(closed.effects.slice(1)).toEqual([{ type: "stop" }, { type: "state", state: "closed", error: undefined }]);
    const events: ConnectionEvent[] = [
      { type: "close" },
      { type: "opened" },
      { type: "timer" },
      { type: "reconnect", delayMs: 0 },
      { type: "reset" },
      { type: "fetched", cursor: "x" },
    ];
    for (const e of events) expect(transition(closed.m, e)).toEqual({ machine: closed.m, effects: [] });
    expect(Object.keys(TABLE.closed)).toEqual([]);
  });

  it("events a phase does not list leave it unchanged (stale callbacks cannot move it)", () => {
    const waiting = run([
      { type: "start", fetchSnapshot: false },
      { type: "ended", error: undefined },
    ]).m;
    for (const e of [{ type: "opened" }, { type: "cursor", id: "late" }, { type: "fetched", cursor: "late" }] as ConnectionEvent[]) {
      expect(transition(waiting, e).machine).toBe(waiting);
    }
  });

  it("is pure: the machine given is never changed", () => {
    const m = Object.freeze(initialMachine("L0", 5));
    expect(() => run([{ type: "start", fetchSnapshot: false }, { type: "opened" }, { type: "ended", error: undefined }], m)).not.toThrow();
    expect(m).toEqual(initialMachine("L0", 5));
  });
});
