import { describe, expect, it } from "vitest";
import { isFlowsyncError } from "../../src/errors";
import { comment, formatEvent, retry } from "../../src/events/sse-frame";

// A minimal WHATWG event-stream parser (fields per line, dispatch on blank line),
// to check what a browser would actually see.
function parse(stream: string): { id?: string; event?: string; data: string }[] {
  const events: { id?: string; event?: string; data: string }[] = [];
  let current: { id?: string; event?: string; data?: string } = {};
  for (const line of stream.split(/\r\n|\r|\n/)) {
    if (line === "") {
      if (current.data !== undefined) events.push({ ...current, data: current.data });
      current = {};
      continue;
    }
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") current.data = current.data === undefined ? value : `${current.data}\n${value}`;
    else if (field === "id" || field === "event") current[field] = value;
  }
  return events;
}

describe("formatEvent", () => {
  it("writes id, event and data lines and ends with a blank line", () => {
    const data = JSON.stringify({ flowId: "f", op: "insert" });
    expect(formatEvent({ id: "1.abc.82AA", event: "SYNC_CANVAS", data })).toBe(`id: 1.abc.82AA\nevent: SYNC_CANVAS\ndata: ${data}\n\n`);
  });

  it("omits id and event when not given", () => {
    expect(formatEvent({ data: "{}" })).toBe("data: {}\n\n");
    expect(formatEvent({ id: "", data: "{}" })).toBe("id: \ndata: {}\n\n");
  });

  it("round-trips several frames through an event-stream parser", () => {
    const frames = [
      formatEvent({ id: "1", event: "SYNC_CANVAS", data: JSON.stringify({ text: "line1\nline2: x" }) }),
      comment("heartbeat"),
      formatEvent({ id: "2", event: "RESET", data: JSON.stringify({ reason: "history-lost" }) }),
    ];
    expect(parse(retry(3000) + frames.join(""))).toEqual([
      { id: "1", event: "SYNC_CANVAS", data: '{"text":"line1\\nline2: x"}' },
      { id: "2", event: "RESET", data: '{"reason":"history-lost"}' },
    ]);
  });

  it("keeps a value's own leading space", () => {
    expect(parse(formatEvent({ event: " x", data: " 1" }))).toEqual([{ event: " x", data: " 1" }]);
  });

  const injections: [string, { id?: string; event?: string; data: string }][] = [
    ["LF in id", { id: "1\nevent: RESET", data: "{}" }],
    ["CR in id", { id: "1\r", data: "{}" }],
    ["NUL in id", { id: "1\u0000", data: "{}" }],
    ["LF in event", { event: "A\ndata: x", data: "{}" }],
    ["CRLF in data", { data: '{"a":1}\r\ndata: injected' }],
    ["CR in data", { data: "{}\revent: RESET" }],
  ];
  for (const [name, event] of injections) {
    it(`refuses ${name} (no field injection)`, () => {
      let error: unknown;
      try {
        formatEvent(event);
      } catch (err) {
        error = err;
      }
      expect(isFlowsyncError(error, "E_SSE_FIELD_INVALID")).toBe(true);
    });
  }
});

describe("comment and retry", () => {
  it("formats comments, one line each, ignored by parsers", () => {
    expect(comment("ping")).toBe(": ping\n");
    expect(comment()).toBe(":\n");
    expect(comment("a\nb")).toBe(": a\n: b\n");
    expect(parse(comment("a\r\nb") + formatEvent({ data: "1" }))).toEqual([{ data: "1" }]);
  });

  it("formats retry and refuses non-integers", () => {
    expect(retry(2500)).toBe("retry: 2500\n");
    expect(retry(0)).toBe("retry: 0\n");
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => retry(bad)).toThrow(/retry/);
  });
});
