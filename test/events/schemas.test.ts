import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EVENT_DATA_SCHEMAS, EVENT_TYPES, flowEventSchema, isValidFlowId, parseFlowEvent, resetDataSchema } from "../../src/events/schemas";

const base = { flowId: "flow-a", id: "n1", clusterTime: "1700848049.1" };

describe("event schemas", () => {
  it("has the six wire event types", () => {
    expect(EVENT_TYPES).toEqual(["SYNC_CANVAS", "EXECUTION_UPDATE", "LOG_STREAM", "RESET", "SNAPSHOT", "PRESENCE"]);
    expect(Object.keys(EVENT_DATA_SCHEMAS)).toEqual([...EVENT_TYPES]);
  });

  it("requires entity on SYNC_CANVAS only", () => {
    const data = { ...base, op: "insert", doc: { a: 1 } };
    expect(flowEventSchema.safeParse({ type: "SYNC_CANVAS", data }).success).toBe(false);
    expect(flowEventSchema.safeParse({ type: "SYNC_CANVAS", data: { ...data, entity: "node" } }).success).toBe(true);
    expect(flowEventSchema.safeParse({ type: "LOG_STREAM", data }).success).toBe(true);
  });

  it("requires changes on updates and a null doc on deletes", () => {
    const parse = (data: object) => flowEventSchema.safeParse({ type: "EXECUTION_UPDATE", data }).success;
    expect(parse({ ...base, op: "update", doc: null })).toBe(false);
    expect(parse({ ...base, op: "update", doc: null, changes: { set: { "a.b": 1 }, unset: [] } })).toBe(true);
    expect(parse({ ...base, op: "delete", doc: { a: 1 } })).toBe(false);
    expect(parse({ ...base, op: "delete", doc: null })).toBe(true);
    expect(parse({ ...base, op: "insert", doc: null })).toBe(false);
    expect(parse({ ...base, op: "upsert", doc: {} })).toBe(false);
  });

  it("checks clusterTime and flowId formats", () => {
    const parse = (data: object) => flowEventSchema.safeParse({ type: "LOG_STREAM", data: { ...base, op: "insert", doc: {}, ...data } }).success;
    expect(parse({ clusterTime: "1700848049" })).toBe(false);
    expect(parse({ flowId: "" })).toBe(false);
    expect(parse({ flowId: "a\u0000b" })).toBe(false);
  });

  it("describes RESET with a known reason", () => {
    expect(resetDataSchema.safeParse({ flowId: "f", reason: "history-lost" }).success).toBe(true);
    expect(resetDataSchema.safeParse({ flowId: "f", reason: "because" }).success).toBe(false);
  });

  it("parses an SSE message into a typed event, tolerating added fields", () => {
    const text = JSON.stringify({ ...base, op: "insert", entity: "edge", doc: { source: "a" }, addedLater: true });
    const event = parseFlowEvent("SYNC_CANVAS", text);
    expect(event?.type === "SYNC_CANVAS" && event.data.entity).toBe("edge");
    expect(parseFlowEvent("SYNC_CANVAS", "{not json")).toBeUndefined();
    expect(parseFlowEvent("UNKNOWN", text)).toBeUndefined();
  });

  it("isValidFlowId: non-empty, ≤ 256 chars, no control characters", () => {
    expect(["flow-a", "Flow A/ü", "f".repeat(256)].every(isValidFlowId)).toBe(true);
    expect(["", "f".repeat(257), "a\nb", "a\u007fb", 1, null].some(isValidFlowId)).toBe(false);
  });
});

describe("the wire contract stays a leaf", () => {
  const importsOf = (path: string) =>
    [...readFileSync(new URL(path, import.meta.url), "utf8").matchAll(/^\s*(?:import|export)[^;]*?from\s+"([^"]+)"/gm)].map((m) => m[1]);

  it("wire.ts (the one definition, shared with browsers) imports nothing; schemas.ts only zod and it", () => {
    expect(importsOf("../../packages/client/src/wire.ts")).toEqual([]);
    expect([...new Set(importsOf("../../src/events/schemas.ts"))]).toEqual(["zod", "flowsync-client/wire"]);
  });
});
