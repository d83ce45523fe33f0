/**
 * Server-Sent Events parsing as the WHATWG spec describes it ("Interpreting an
 * event stream"), for the fetch-based reader: bytes in, `{event, data, id}` out.
 *
 * - Lines end with CRLF, LF or CR (a CR at the end of a chunk waits for the next
 *   chunk, in case an LF follows).
 * - `data:` lines join with "\n"; `event:` defaults to "message"; an `id:` holding
 *   NUL is ignored; `retry:` (digits only) is reported separately.
 * - A blank line dispatches; a block without data dispatches nothing but still
 *   sets the last event id, as in browsers.
 *
 * Pure and browser-safe: TextDecoder only.
 */

export interface SseMessage {
  /** The `event:` field, "message" when absent. */
  event: string;
  data: string;
  /** The last event id after this message (the stream's, as EventSource keeps it). */
  id: string | undefined;
}

export interface SseParserCallbacks {
  message(message: SseMessage): void;
  /** A `retry:` field: the server's reconnection delay in milliseconds. */
  retry?(ms: number): void;
}

export class SseParser {
  readonly #cb: SseParserCallbacks;
  readonly #decoder = new TextDecoder();
  #text = "";
  #pendingCr = false;
  #data: string[] = [];
  #event = "";
  #lastEventId: string | undefined;
  #sawBom = false;

  constructor(callbacks: SseParserCallbacks, lastEventId?: string) {
    this.#cb = callbacks;
    this.#lastEventId = lastEventId;
  }

  get lastEventId(): string | undefined {
    return this.#lastEventId;
  }

  /** Feeds bytes (or already decoded text). */
  push(chunk: Uint8Array | string): void {
    let text = typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true });
    if (!this.#sawBom && text.length > 0) {
      this.#sawBom = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    // Only a chunk with text settles a pending CR: an empty one (or bytes that end mid-character) must keep it.
    if (this.#pendingCr && text.length > 0) {
      this.#pendingCr = false;
      if (text.startsWith("\n")) text = text.slice(1);
    }
    this.#text += text;
    let start = 0;
    for (;;) {
      const cr = this.#text.indexOf("\r", start);
      const lf = this.#text.indexOf("\n", start);
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      if (end < 0) break;
      const line = this.#text.slice(start, end);
      if (this.#text[end] === "\r") {
        if (end + 1 === this.#text.length) {
          // CR at the end of the chunk: an LF may follow in the next one.
          this.#pendingCr = true;
          start = end + 1;
          this.#line(line);
          break;
        }
        start = this.#text[end + 1] === "\n" ? end + 2 : end + 1;
      } else {
        start = end + 1;
      }
      this.#line(line);
    }
    this.#text = this.#text.slice(start);
  }

  /** Drops a partly received event (the connection ended mid-event: the spec discards it). */
  reset(): void {
    this.#text = "";
    this.#pendingCr = false;
    this.#data = [];
    this.#event = "";
  }

  #line(line: string): void {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.#data.push(value);
        break;
      case "event":
        this.#event = value;
        break;
      case "id":
        if (!value.includes("\u0000")) this.#lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.#cb.retry?.(Number(value));
        break;
    }
  }

  #dispatch(): void {
    const data = this.#data;
    const event = this.#event;
    this.#data = [];
    this.#event = "";
    if (data.length === 0) return;
    this.#cb.message({ event: event === "" ? "message" : event, data: data.join("\n"), id: this.#lastEventId });
  }
}
