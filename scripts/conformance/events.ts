// expectEvents: the observed command events of a client, in order
// (spec "expectedEventsForClient" / "expectedCommandEvent").
import { show } from "./bson-values.js";
import type { RecordedEvent } from "./entities.js";
import { UnimplementedError } from "./errors.js";
import { match } from "./matcher.js";

type Doc = Record<string, unknown>;

const EVENT_FIELDS: Record<string, string[]> = {
  commandStartedEvent: ["command", "commandName", "databaseName", "hasServiceId", "hasServerConnectionId"],
  commandSucceededEvent: ["reply", "commandName", "databaseName", "hasServiceId", "hasServerConnectionId"],
  commandFailedEvent: ["commandName", "databaseName", "hasServiceId", "hasServerConnectionId"],
};

function summary(events: RecordedEvent[]): string {
  return `[${events.map((e) => `${e.type.replace("Event", "")}:${e.commandName}`).join(", ")}]`;
}

function expectedSummary(events: Doc[]): string {
  return `[${events
    .map((e) => {
      const type = Object.keys(e)[0];
      const name = (e[type!] as Doc | undefined)?.commandName ?? Object.keys(((e[type!] as Doc | undefined)?.command as Doc | undefined) ?? {})[0] ?? "?";
      return `${type!.replace("Event", "")}:${String(name)}`;
    })
    .join(", ")}]`;
}

function matchEvent(expected: Doc, actual: RecordedEvent, index: number, lsidOf?: (sessionId: string) => unknown): string | null {
  const types = Object.keys(expected);
  if (types.length !== 1) throw new UnimplementedError(`expected event with keys ${types.join(",")}`);
  const type = types[0];
  const fields = EVENT_FIELDS[type!];
  if (!fields) throw new UnimplementedError(`expected event type ${type}`);
  const want = (expected[type!] ?? {}) as Doc;
  for (const key of Object.keys(want)) if (!fields.includes(key)) throw new UnimplementedError(`${type}.${key}`);

  const at = `event ${index}`;
  if (actual.type !== type) return `${at}: expected ${type}, got ${actual.type} for ${actual.commandName}`;
  if (want.commandName !== undefined && want.commandName !== actual.commandName) {
    return `${at}: expected commandName ${show(want.commandName)}, got ${show(actual.commandName)}`;
  }
  if (want.databaseName !== undefined && want.databaseName !== actual.databaseName) {
    return `${at} (${actual.commandName}): expected databaseName ${show(want.databaseName)}, got ${show(actual.databaseName)}`;
  }
  if (want.command !== undefined) {
    const failure = match(want.command, actual.command, { root: true, lsidOf }, ".command");
    if (failure) return `${at} (${actual.commandName}): ${failure}`;
  }
  if (want.reply !== undefined) {
    const failure = match(want.reply, actual.reply, { root: true, lsidOf }, ".reply");
    if (failure) return `${at} (${actual.commandName}): ${failure}`;
  }
  if (want.hasServiceId !== undefined && want.hasServiceId !== actual.hasServiceId) {
    return `${at} (${actual.commandName}): expected hasServiceId ${String(want.hasServiceId)}`;
  }
  if (want.hasServerConnectionId !== undefined) {
    const has = actual.serverConnectionId !== null && actual.serverConnectionId > 0n;
    if (has !== want.hasServerConnectionId) return `${at} (${actual.commandName}): expected hasServerConnectionId ${String(want.hasServerConnectionId)}`;
  }
  return null;
}

/** One expectedEventsForClient entry against that client's observed events. */
export function matchClientEvents(expected: Doc, actual: RecordedEvent[], lsidOf?: (sessionId: string) => unknown): string | null {
  for (const key of Object.keys(expected)) {
    if (!["client", "eventType", "events", "ignoreExtraEvents"].includes(key)) throw new UnimplementedError(`expectEvents.${key}`);
  }
  const eventType = (expected.eventType as string | undefined) ?? "command";
  if (eventType !== "command") throw new UnimplementedError(`expectEvents eventType ${eventType}`);
  const events = expected.events as Doc[];
  const ignoreExtra = expected.ignoreExtraEvents === true;

  const countOk = ignoreExtra ? actual.length >= events.length : actual.length === events.length;
  const prefix = `events of ${String(expected.client)}`;
  // Compare one by one first: the first differing event says more than a count.
  for (let i = 0; i < Math.min(events.length, actual.length); i++) {
    const failure = matchEvent(events[i]!, actual[i]!, i, lsidOf);
    if (failure) return `${prefix}: ${failure}`;
  }
  if (!countOk) {
    return `${prefix}: expected ${events.length}${ignoreExtra ? " or more" : ""} event(s) ${expectedSummary(events)}, got ${actual.length} ${summary(actual)}`;
  }
  return null;
}
