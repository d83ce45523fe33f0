/**
 * The SSE wire format, and nothing else (after better-sse's EventBuffer).
 *
 * A frame is built once per event and the same string goes to every subscriber,
 * so these functions are on the hot path: plain concatenation, one regex test
 * per field. See https://html.spec.whatwg.org/multipage/server-sent-events.html
 * ("Interpreting an event stream"):
 * - lines end at CR, LF or CRLF, so a CR or LF inside a value would end the
 *   field early and let the rest be read as another field (injection);
 * - an `id` containing NUL is ignored by the parser, which would silently break
 *   resume; so NUL is refused in `id` (and in `event`, for symmetry);
 * - one space after the colon is stripped by the parser, so values keep any
 *   leading spaces of their own.
 */
import { FlowsyncError } from "../errors";

const LINE_BREAK = /[\r\n]/;
const LINE_BREAK_OR_NUL = /[\r\n\u0000]/;

export interface SseEvent {
  /** The cursor; omitted → the client keeps its previous Last-Event-ID. */
  id?: string;
  /** The event type; omitted → the client dispatches a plain `message`. */
  event?: string;
  /** One line of JSON text (JSON.stringify output never contains CR or LF). */
  data: string;
}

function assertField(name: string, value: string, forbidden: RegExp): void {
  if (forbidden.test(value)) {
    throw new FlowsyncError("E_SSE_FIELD_INVALID", `SSE ${name} must not contain CR, LF${name === "data" ? "" : " or NUL"}`);
  }
}

/** `id: …\nevent: …\ndata: …\n\n`. Throws `E_SSE_FIELD_INVALID` on a value that would break the framing. */
export function formatEvent({ id, event, data }: SseEvent): string {
  let frame = "";
  if (id !== undefined) {
    assertField("id", id, LINE_BREAK_OR_NUL);
    frame += `id: ${id}\n`;
  }
  if (event !== undefined) {
    assertField("event", event, LINE_BREAK_OR_NUL);
    frame += `event: ${event}\n`;
  }
  assertField("data", data, LINE_BREAK);
  return `${frame}data: ${data}\n\n`;
}

/**
 * A comment (`: text`), ignored by clients; used as heartbeat so that proxies
 * keep an idle stream open. Multi-line text becomes one comment line per line.
 */
export function comment(text = ""): string {
  return (
    text
      .split(/\r\n|\r|\n/)
      .map((line) => (line === "" ? ":" : `: ${line}`))
      .join("\n") + "\n"
  );
}

/** `retry: ms`: how long the browser waits before reconnecting. Sent once per connection. */
export function retry(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new FlowsyncError("E_SSE_FIELD_INVALID", `SSE retry must be a non-negative integer, got ${ms}`);
  }
  return `retry: ${ms}\n`;
}

/**
 * `id: …` alone: sets the client's last event id without dispatching an event
 * (WHATWG: dispatch stores the id first, then drops a block without data). Sent
 * on a fresh connection, so that a client that leaves before its first event
 * still resumes from where it joined instead of from "now".
 */
export function idOnly(id: string): string {
  assertField("id", id, LINE_BREAK_OR_NUL);
  return `id: ${id}\n\n`;
}
