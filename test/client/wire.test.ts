/**
 * The client's hand-written guards (flowsync-client/wire) against the service's
 * zod schemas, differentially: for valid events and for random mutations of
 * them, a guard accepts exactly what its schema accepts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EVENT_TYPES, isEventData, parseFlowEvent } from "flowsync-client/wire";
import { EVENT_DATA_SCHEMAS } from "../../src/events/schemas";

const T = "1700000000.3";
const valid: Array<[string, Record<string, unknown>]> = [
  ["SYNC_CANVAS", { flowId: "f", op: "insert", id: "a", entity: "node", clusterTime: T, doc: { _id: "a", x: 1 } }],
  [
    "SYNC_CANVAS",
    {
      flowId: "f",
      op: "update",
      id: "a",
      entity: "edge",
      clusterTime: T,
      doc: null,
      changes: { set: { "p.x": 2 }, unset: ["q"], truncated: [{ field: "arr", newSize: 1 }] },
    },
  ],
  ["EXECUTION_UPDATE", { flowId: "f", op: "replace", id: "x", clusterTime: T, doc: { _id: "x" } }],
  ["LOG_STREAM", { flowId: "f", op: "delete", id: "l", clusterTime: T, doc: null }],
  ["RESET", { flowId: "f", reason: "history-lost" }],
  ["SNAPSHOT", { flowId: "f", cursor: "c", clusterTime: T, canvas: { node: [{ _id: "a" }], edge: [] }, executions: [], logs: [{ _id: "l" }] }],
  [
    "PRESENCE",
    {
      flowId: "f",
      users: [
        { id: "a", name: "A", color: "#f00", n: 2, admin: true, connections: 2 },
        { id: "b", connections: 1 },
      ],
      joined: ["b"],
      left: ["c"],
    },
  ],
];

// Values that break one rule or another: wrong types, empty, control characters, arrays for objects, …
const oddValue = fc.constantFrom<unknown>(
  undefined,
  null,
  "",
  "f\u0001",
  "x".repeat(257),
  "1.2",
  "1.",
  "a.b",
  0,
  -1,
  1.5,
  Number.NaN,
  true,
  [],
  [{}],
  [1],
  ["s"],
  {},
  { a: 1 },
  "insert",
  "update",
  "replace",
  "delete",
  "upsert",
  "node",
  "history-lost",
  "nope",
  { set: {}, unset: [] },
  { set: [], unset: [] },
  { set: {}, unset: [1] },
  { set: {}, unset: [], truncated: [{ field: "a", newSize: -1 }] },
  { set: {}, unset: [], truncated: [{ field: "a", newSize: 2 }] },
  { node: [{}] },
  { node: [1] },
  { node: {} },
  [{ id: "a", connections: 1 }],
  [{ id: "a", connections: 0 }],
  [{ id: "a", connections: 1.5 }],
  [{ id: 1, connections: 1 }],
  [{ id: "a" }],
  [{ id: "a", connections: 1, name: null }],
  [{ id: "a", connections: 1, name: {} }],
  [{ id: "a", connections: 1, avatar: [] }],
);
const keys = [
  "flowId",
  "op",
  "id",
  "entity",
  "clusterTime",
  "doc",
  "changes",
  "reason",
  "cursor",
  "canvas",
  "executions",
  "logs",
  "users",
  "joined",
  "left",
  "extra",
];

describe("wire guards agree with the zod schemas", () => {
  it("accept every valid example", () => {
    for (const [type, data] of valid) {
      expect(EVENT_DATA_SCHEMAS[type as keyof typeof EVENT_DATA_SCHEMAS].safeParse(data).success).toBe(true);
      expect(isEventData(type, data)).toBe(true);
    }
  });

  it("accept and refuse the same random mutations (5,000 cases)", () => {
    const mutation = fc.record({
      base: fc.nat(valid.length - 1),
      edits: fc.array(fc.tuple(fc.constantFrom(...keys), fc.oneof(oddValue, fc.constant("__delete__"))), { minLength: 1, maxLength: 3 }),
    });
    fc.assert(
      fc.property(mutation, ({ base, edits }) => {
        const [type, original] = valid[base]!;
        const data: Record<string, unknown> = structuredClone(original);
        for (const [key, value] of edits) {
          if (value === "__delete__") delete data[key];
          else data[key] = value;
        }
        const schema = EVENT_DATA_SCHEMAS[type as keyof typeof EVENT_DATA_SCHEMAS];
        expect(isEventData(type, data)).toBe(schema.safeParse(data).success);
      }),
      { numRuns: 5000 },
    );
  });

  it("parseFlowEvent: unknown event names, bad JSON and non-objects are not events", () => {
    expect(parseFlowEvent("message", JSON.stringify(valid[0]![1]))).toBeUndefined();
    expect(parseFlowEvent("SYNC_CANVAS", "{")).toBeUndefined();
    expect(parseFlowEvent("RESET", "[]")).toBeUndefined();
    expect(parseFlowEvent("RESET", JSON.stringify({ flowId: "f", reason: "history-lost" }))).toEqual({
      type: "RESET",
      data: { flowId: "f", reason: "history-lost" },
    });
    expect(EVENT_TYPES).toEqual(Object.keys(EVENT_DATA_SCHEMAS));
  });
});
