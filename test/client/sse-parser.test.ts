import { createParser } from "eventsource-parser";
import fc from "fast-check";
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
    const { messages, retries } = parse(['retry: 2000\n: hello\n\nid: a\nevent: X\ndata: {"a":\ndata: 1}\n\n']);
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

describe("SseParser against eventsource-parser (differential, random chunk splits)", () => {
  it("a zero-length chunk between CR and LF does not split a line ending", () => {
    const { messages } = parse(["data: a\r", "", "\ndata: b\n\n"]);
    expect(messages).toEqual([{ event: "message", data: "a\nb", id: undefined }]);
  });

  it("gives the same messages, ids and retries for 3,000 random streams cut at random places", () => {
    const eol = fc.constantFrom("\n", "\r\n", "\r");
    const text = fc.string({ unit: fc.constantFrom("a", "b", " ", ":", "é", "€", "😀", "{", "}"), maxLength: 12 }).map((s) => s.replace(/^ /, "x"));
    const block = fc.record({
      comment: fc.option(text),
      retry: fc.option(fc.nat(100_000)),
      id: fc.option(text),
      event: fc.option(fc.constantFrom("SYNC_CANVAS", "RESET", "x y")),
      data: fc.array(text, { minLength: 1, maxLength: 3 }),
      eols: fc.array(eol, { minLength: 8, maxLength: 8 }),
    });
    const stream = fc.array(block, { minLength: 1, maxLength: 6 }).map((blocks) =>
      blocks
        .map((b) => {
          const lines: string[] = [];
          if (b.comment !== null) lines.push(`:${b.comment}`);
          if (b.retry !== null) lines.push(`retry: ${b.retry}`);
          if (b.id !== null) lines.push(`id: ${b.id}`);
          if (b.event !== null) lines.push(`event: ${b.event}`);
          for (const d of b.data) lines.push(`data: ${d}`);
          lines.push("");
          return lines.map((l, i) => l + b.eols[i % b.eols.length]).join("");
        })
        .join(""),
    );
    const cuts = fc.array(fc.nat(), { maxLength: 12 });
    fc.assert(
      fc.property(stream, cuts, fc.boolean(), (body, rawCuts, asBytes) => {
        const bytes = new TextEncoder().encode(body);
        const size = asBytes ? bytes.length : body.length;
        const at = rawCuts.map((c) => c % (size + 1)).sort((a, b) => a - b);
        const bounds = [0, ...at, size];
        // A final LF: a CR that ends the stream is a line end for us at once, for eventsource-parser only once it knows no LF follows.
        const chunks = [...bounds.slice(1).map((end, i) => (asBytes ? bytes.slice(bounds[i], end) : body.slice(bounds[i], end))), "\n"];

        const expected: SseMessage[] = [];
        const expectedRetries: number[] = [];
        let lastId: string | undefined;
        const oracle = createParser({
          onEvent: (e) => {
            if (e.id !== undefined) lastId = e.id;
            expected.push({ event: e.event ?? "message", data: e.data, id: lastId });
          },
          onRetry: (ms) => expectedRetries.push(ms),
        });
        // The oracle takes text; one decoder with stream: true hands it the same characters.
        const decoder = new TextDecoder();
        for (const c of chunks) oracle.feed(typeof c === "string" ? c : decoder.decode(c, { stream: true }));

        const { messages, retries } = parse(chunks);
        expect(messages).toEqual(expected);
        expect(retries).toEqual(expectedRetries);
      }),
      { numRuns: 3000 },
    );
  });
});
