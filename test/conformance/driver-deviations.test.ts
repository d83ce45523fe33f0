import { describe, expect, it } from "vitest";
import type { RecordedEvent } from "../../scripts/conformance/entities.js";
import { withoutDeviations } from "../../scripts/conformance/driver-deviations.js";

const started = (commandName: string, command: Record<string, unknown>): RecordedEvent => ({
  type: "commandStartedEvent",
  commandName,
  databaseName: "admin",
  command,
  serverConnectionId: 1n,
  hasServiceId: false,
});
const expectCommit = (writeConcern: unknown) => ({
  commandStartedEvent: { command: { commitTransaction: 1, writeConcern }, commandName: "commitTransaction" },
});

describe("driver deviations", () => {
  it("drops only the driver's wtimeout 10000 from a first commit whose expected writeConcern has none", () => {
    const { events, used } = withoutDeviations(
      [expectCommit({ w: "majority" })],
      [started("commitTransaction", { commitTransaction: 1, writeConcern: { w: "majority", wtimeout: 10000 } })],
    );
    expect(used.map((d) => d.id)).toEqual(["commit-wtimeout"]);
    expect(events[0]!.command).toEqual({ commitTransaction: 1, writeConcern: { w: "majority" } });
  });

  it("forgives nothing else: another wtimeout, an expected wtimeout, an operator, another command", () => {
    const cases: Array<[Record<string, unknown>, RecordedEvent]> = [
      [expectCommit({ w: "majority" }), started("commitTransaction", { commitTransaction: 1, writeConcern: { w: "majority", wtimeout: 5000 } })],
      [
        expectCommit({ w: "majority", wtimeout: 10000 }),
        started("commitTransaction", { commitTransaction: 1, writeConcern: { w: "majority", wtimeout: 10000 } }),
      ],
      [expectCommit({ $$exists: false }), started("commitTransaction", { commitTransaction: 1, writeConcern: { w: "majority", wtimeout: 10000 } })],
      [
        { commandStartedEvent: { command: { insert: "c", writeConcern: { w: 1 } } } },
        started("insert", { insert: "c", writeConcern: { w: 1, wtimeout: 10000 } }),
      ],
    ];
    for (const [expected, actual] of cases) {
      const { events, used } = withoutDeviations([expected], [actual]);
      expect(used).toEqual([]);
      expect(events[0]).toBe(actual);
    }
  });
});
