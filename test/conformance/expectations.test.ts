// expectEvents and expectError checks, with recorded events and driver error
// objects built by hand (no server needed).
import { MongoNetworkError, MongoServerError } from "mongodb";
import { describe, expect, it } from "vitest";
import type { RecordedEvent } from "../../scripts/conformance/entities.js";
import { AssertionFailure, UnimplementedError } from "../../scripts/conformance/errors.js";
import { matchClientEvents } from "../../scripts/conformance/events.js";
import { checkExpectedError } from "../../scripts/conformance/expect-error.js";

const started = (commandName: string, command: Record<string, unknown>, databaseName = "db0"): RecordedEvent => ({
  type: "commandStartedEvent",
  commandName,
  databaseName,
  command: { [commandName]: 1, ...command, $db: databaseName, lsid: { id: "x" } },
  serverConnectionId: 3n,
  hasServiceId: false,
});

describe("expectEvents", () => {
  const actual = [started("aggregate", { aggregate: "c", pipeline: [{ $changeStream: {} }] }), started("getMore", { getMore: 5, collection: "c" })];

  it("matches events in order, commands as root documents", () => {
    const expected = {
      client: "client0",
      events: [
        { commandStartedEvent: { command: { aggregate: "c", pipeline: [{ $changeStream: {} }] }, commandName: "aggregate", databaseName: "db0" } },
        { commandStartedEvent: { command: { getMore: { $$type: ["int", "long"] }, collection: "c" } } },
      ],
    };
    expect(matchClientEvents(expected, actual)).toBeNull();
  });

  it("fails on extra events unless ignoreExtraEvents", () => {
    const expected = { client: "client0", events: [{ commandStartedEvent: { commandName: "aggregate" } }] };
    expect(matchClientEvents(expected, actual)).toMatch(/expected 1 event\(s\).*got 2/);
    expect(matchClientEvents({ ...expected, ignoreExtraEvents: true }, actual)).toBeNull();
  });

  it("an empty list means no events at all", () => {
    expect(matchClientEvents({ client: "client0", events: [] }, [])).toBeNull();
    expect(matchClientEvents({ client: "client0", events: [] }, actual)).toMatch(/expected 0 event/);
  });

  it("reports the first differing event", () => {
    const expected = { client: "client0", events: [{ commandStartedEvent: { commandName: "find" } }, { commandStartedEvent: {} }] };
    expect(matchClientEvents(expected, actual)).toMatch(/event 0: expected commandName "find", got "aggregate"/);
    const wrongDb = { client: "client0", events: [{ commandStartedEvent: { databaseName: "other" } }], ignoreExtraEvents: true };
    expect(matchClientEvents(wrongDb, actual)).toMatch(/databaseName/);
  });

  it("fails loudly on event kinds it does not implement", () => {
    expect(() => matchClientEvents({ client: "c", eventType: "cmap", events: [] }, [])).toThrow(UnimplementedError);
    expect(() => matchClientEvents({ client: "c", events: [{ poolCreatedEvent: {} }] }, actual)).toThrow(UnimplementedError);
  });
});

describe("expectError", () => {
  const serverError = new MongoServerError({
    ok: 0,
    code: 280,
    codeName: "ChangeStreamFatalError",
    errmsg: "cannot resume stream",
    errorLabels: ["NonResumableChangeStreamError"],
  });

  it("checks code, code name (case-insensitively), message and labels", () => {
    expect(() =>
      checkExpectedError(
        { errorCode: 280, errorCodeName: "changestreamfatalerror", errorContains: "CANNOT RESUME", errorLabelsContain: ["NonResumableChangeStreamError"] },
        serverError,
      ),
    ).not.toThrow();
    expect(() => checkExpectedError({ errorCode: 6 }, serverError)).toThrow(AssertionFailure);
    expect(() => checkExpectedError({ errorLabelsContain: ["ResumableChangeStreamError"] }, serverError)).toThrow(/label ResumableChangeStreamError missing/);
    expect(() => checkExpectedError({ errorLabelsOmit: ["NonResumableChangeStreamError"] }, serverError)).toThrow(/must be absent/);
  });

  it("tells server errors from client errors", () => {
    expect(() => checkExpectedError({ isClientError: false }, serverError)).not.toThrow();
    expect(() => checkExpectedError({ isClientError: true }, serverError)).toThrow(/came from the server/);
    const network = new MongoNetworkError("connection closed");
    expect(() => checkExpectedError({ isClientError: true }, network)).not.toThrow();
    expect(() => checkExpectedError({ isClientError: false }, network)).toThrow(/did not come from the server/);
  });

  it("matches errorResponse as a root document", () => {
    expect(() => checkExpectedError({ errorResponse: { code: 280 } }, serverError)).not.toThrow();
    expect(() => checkExpectedError({ errorResponse: { code: 281 } }, serverError)).toThrow(/errorResponse mismatch/);
  });

  it("needs a result for expectResult unless it is optional", () => {
    expect(() => checkExpectedError({ expectResult: { insertedCount: 2 } }, serverError)).toThrow(/expectResult mismatch/);
    expect(() => checkExpectedError({ expectResult: { $$unsetOrMatches: { insertedCount: 2 } } }, serverError)).not.toThrow();
  });

  it("fails loudly on keys it does not implement", () => {
    expect(() => checkExpectedError({ writeErrors: {} }, serverError)).toThrow(/unimplemented: expectError.writeErrors/);
  });
});
