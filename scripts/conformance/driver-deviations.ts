// Where the installed Node driver sends something other than the spec expects,
// independent of the backend. A test whose only mismatch is one of these is
// reported as not applicable with the deviation named, and only after the rest
// of it (every other event, every other field, the outcome) matched; any other
// mismatch still fails it. Each entry names what the driver does and why it is
// the driver's choice, not the server's.
import type { RecordedEvent } from "./entities.js";

type Doc = Record<string, unknown>;

export interface DriverDeviation {
  id: string;
  /** One line for the report. */
  what: string;
  /** The event as the spec expects it, if `actual` differs from `expected` only by this deviation. */
  normalize(expected: Doc, actual: RecordedEvent): RecordedEvent | undefined;
}

const isDoc = (v: unknown): v is Doc => typeof v === "object" && v !== null && !Array.isArray(v);

export const DRIVER_DEVIATIONS: DriverDeviation[] = [
  {
    id: "commit-wtimeout",
    what:
      "the driver (mongodb 7.x, sessions.ts commitTransaction/abortTransaction) adds wtimeout: 10000 to a transaction's own writeConcern on the first commit/abort; " +
      "the transactions spec adds it only when retrying commitTransaction",
    normalize(expected, actual) {
      if (actual.type !== "commandStartedEvent" || (actual.commandName !== "commitTransaction" && actual.commandName !== "abortTransaction")) return undefined;
      const want = (expected.commandStartedEvent as Doc | undefined)?.command as Doc | undefined;
      const wantWc = want?.writeConcern;
      const gotWc = actual.command?.writeConcern;
      if (!isDoc(wantWc) || "wtimeout" in wantWc || Object.keys(wantWc).some((k) => k.startsWith("$$"))) return undefined;
      if (!isDoc(gotWc) || Number(gotWc.wtimeout) !== 10_000) return undefined;
      const { wtimeout: _dropped, ...rest } = gotWc;
      return { ...actual, command: { ...actual.command, writeConcern: rest } };
    },
  },
];

/** Applies every deviation that turns an event into the expected one; returns the events and the deviations used. */
export function withoutDeviations(expected: Doc[], actual: RecordedEvent[]): { events: RecordedEvent[]; used: DriverDeviation[] } {
  const used = new Set<DriverDeviation>();
  const events = actual.map((event, i) => {
    const want = expected[i];
    if (!want) return event;
    for (const d of DRIVER_DEVIATIONS) {
      const normalized = d.normalize(want, event);
      if (normalized) {
        used.add(d);
        return normalized;
      }
    }
    return event;
  });
  return { events, used: [...used] };
}
