import { describe, expect, it } from "vitest";
import { SseParser, type SseMessage } from "../../packages/client/src/sse-parser";

function parse(chunks: Array<string | Uint8Array>, lastEventId?: string) {
  const messages: SseMessage[] = [];
  const retries: number[] = [];
  const p = new SseParser({ message: (m) => messages.push(m), retry: (ms) => retries.push(ms) }, lastEventId);
  for (const c of chunks) p.push(c);
  return { messages, retries, p };
}

describe("SseParser", () => {
  it("parses id, event, multi-line data, comments and retry", () => {
    const { messages, retries } = parse(["retry: 2000\n: hello\n\nid: a\nevent: X\ndata: {\"a\":\ndata: 1}\n\n"]);
    expect(retries).toEqual([2000]);
    expect(messages).toEqual([{ event: "X", data: '{"a":\n1}', id: "a" }]);
  });

  it("handles CRLF, CR and LF, also split across chunks (a CR at a chunk's end)", () => {
    const { messages } = parse(["id: 1\r", "\ndata: x\r\r", "id: 2\rdata: y\n", "\n"]);
    expect(messages).toEqual([
      { event: "message", data: "x", id: "1" },
      { event: "message", data: "y", id: "2" },
    ]);
  });

  it("decodes UTF-8 split inside a character, and strips a leading BOM", () => {
    const bytes = new TextEncoder().encode("\ufeffdata: é€\n\n");
    const { messages } = parse([bytes.slice(0, 8), bytes.slice(8)]);
    expect(messages).toEqual([{ event: "message", data: "é€", id: undefined }]);
  });

  it("keeps the last id across messages; an id-only block sets it without dispatching; NUL ids are ignored", () => {
    const { messages, p } = parse(["id: 5\n\ndata: a\n\nid: bad\u0000\ndata: b\n\n"], "0");
    expect(messages.map((m) => [m.data, m.id])).toEqual([
      ["a", "5"],
      ["b", "5"],
    ]);
    expect(p.lastEventId).toBe("5");
  });

  it("dispatches nothing for an unfinished event; reset() drops it", () => {
    const { messages, p } = parse(["id: 1\ndata: half"]);
    expect(messages).toEqual([]);
    p.reset();
    p.push("\n\n");
    expect(messages).toEqual([]);
  });

  it("ignores unknown fields and a field without colon", () => {
    const { messages } = parse(["foo: bar\ndata\nevent: E\n\n"]);
    expect(messages).toEqual([{ event: "E", data: "", id: undefined }]);
  });
});
