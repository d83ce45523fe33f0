/**
 * Property-based fuzzing of the HTTP surface (fast-check), over raw TCP so that
 * nothing normalises the requests: methods, paths and their encodings, flowIds,
 * Last-Event-ID garbage and huge values, query strings, header sizes, and bytes
 * that are not HTTP at all. Every case must get its documented answer (docs/wire.md
 * "Error codes"), never a 5xx, and meanwhile a subscriber opened before the
 * fuzzing keeps its stream: afterwards it still receives events, and no
 * subscription or per-IP slot is left behind.
 */
import net from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isValidFlowId } from "../../src/events/schemas";
import { eventually } from "../support/eventually";
import { subscribeUrl, useFlowsync } from "../support/flowsync";
import { SseClient } from "../support/sse-client";

const RUNS = Number(process.env.FUZZ_HTTP_RUNS ?? 300);
const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : undefined;
const params = { numRuns: RUNS, ...(seed === undefined ? {} : { seed }) };
const BASE = "/api/creative-flowboard";

const t = useFlowsync("fuzz", { MAX_STREAMS_PER_IP: "1000" });
let control: SseClient;
let port: number;
let cases = 0;

beforeAll(async () => {
  port = Number(new URL(t.fs.url).port);
  control = new SseClient(subscribeUrl(t.fs, "control"));
  await control.opened();
});

afterAll(async () => {
  console.log(`fuzz: ${cases} HTTP cases`);
  await control?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  closed: boolean;
}

/**
 * Sends `request` as is; resolves once the answer is complete (Content-Length
 * read, or for an event stream `streamUntil` seen), the server closes, or `waitMs`.
 */
function send(request: string | Uint8Array, { streamUntil = ": flowsync\n", waitMs = 3000 } = {}): Promise<Answer | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let text = "";
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const head = text.indexOf("\r\n\r\n");
      if (!text.startsWith("HTTP/1.1 ") || head < 0) return resolve(undefined);
      const [statusLine, ...lines] = text.slice(0, head).split("\r\n");
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      resolve({ status: Number(statusLine!.split(" ")[1]), headers, body: text.slice(head + 4), closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.setEncoding("latin1");
    socket.on("error", () => finish(true));
    socket.on("close", () => finish(true));
    socket.on("data", (chunk: string) => {
      text += chunk;
      const head = text.indexOf("\r\n\r\n");
      if (head < 0) return;
      // A HEAD answer has headers only, whatever Content-Length says.
      if (typeof request === "string" && request.startsWith("HEAD ")) return finish(false);
      const length = /\r\ncontent-length: (\d+)/i.exec(text.slice(0, head));
      if (length && Buffer.byteLength(text.slice(head + 4), "latin1") >= Number(length[1])) finish(false);
      else if (/\r\ncontent-type: text\/event-stream/i.test(text.slice(0, head)) && text.slice(head + 4).includes(streamUntil)) finish(false);
    });
    socket.write(request);
  });
}

const get = (target: string, headers: Record<string, string> = {}) =>
  `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}\r\n`;

/** Every error answer: JSON {error: {code, message}}. */
function expectJsonError(a: Answer, code?: string): void {
  expect(a.headers["content-type"]).toMatch(/^application\/json/);
  const body = JSON.parse(a.body) as { error: { code: string; message: string } };
  expect(typeof body.error.message).toBe("string");
  if (code) expect(body.error.code).toBe(code);
}

const DOCUMENTED = new Set([200, 204, 304, 400, 401, 403, 404, 405, 429, 431, 503]);

describe("the HTTP surface under fuzzing", () => {
  it(`methods × paths (segments, dot segments, percent-encodings): a documented status, JSON errors, never 5xx (${RUNS} cases)`, async () => {
    const segment = fc.oneof(
      fc.constantFrom(
        "api",
        "creative-flowboard",
        "subscribe",
        "flows",
        "snapshot",
        "healthz",
        "readyz",
        "metrics",
        "",
        ".",
        "..",
        "%2e%2e",
        "%",
        "%ZZ",
        "%E0%A4%A",
        "%00",
        "a%2Fb",
        "?",
        "#",
        "*",
      ),
      fc.string({ unit: "grapheme", maxLength: 20 }).map(encodeURIComponent),
      fc.string({ unit: "binary-ascii", maxLength: 10 }).map((s) => s.replace(/[\s\x00-\x1f\x7f]/g, "")),
    );
    const method = fc.oneof(fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"), fc.stringMatching(/^[A-Z]{1,10}$/));
    await fc.assert(
      fc.asyncProperty(method, fc.array(segment, { minLength: 1, maxLength: 6 }), fc.boolean(), async (m, segments, prefixed) => {
        cases++;
        const path = `${prefixed ? BASE : ""}/${segments.join("/")}`;
        const a = await send(`${m} ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`, { waitMs: 1000 });
        expect(a, `${m} ${path}: an answer`).toBeDefined();
        expect(DOCUMENTED.has(a!.status), `${m} ${path} → ${a!.status}`).toBe(true);
        if (a!.status >= 400 && m !== "HEAD") expectJsonError(a!);
      }),
      params,
    );
  }, 120_000);

  it(`flowIds of any characters and length: 200 stream exactly when the flowId is valid, else 400 E_FLOW_ID_INVALID — subscribe and snapshot (${RUNS} cases)`, async () => {
    const flowId = fc.oneof(
      fc.string({ unit: "grapheme", minLength: 1, maxLength: 300 }),
      fc.string({ unit: "binary", minLength: 1, maxLength: 40 }),
      fc.constantFrom("x".repeat(256), "x".repeat(257), "a\u0000", "a\u007fb", "tab\tbed", "../etc", "%"),
    );
    await fc.assert(
      fc.asyncProperty(flowId, fc.boolean(), async (id, snapshot) => {
        cases++;
        const target = snapshot ? `${BASE}/flows/${encodeURIComponent(id)}/snapshot` : `${BASE}/subscribe/${encodeURIComponent(id)}`;
        const a = await send(get(target));
        expect(a, target).toBeDefined();
        if (isValidFlowId(id)) {
          expect(a!.status, `${JSON.stringify(id)}`).toBe(200);
          if (!snapshot) expect(a!.headers["content-type"]).toMatch(/^text\/event-stream/);
        } else {
          expect(a!.status, `${JSON.stringify(id)}`).toBe(400);
          expectJsonError(a!, "E_FLOW_ID_INVALID");
        }
      }),
      params,
    );
  }, 120_000);

  it(`Last-Event-ID garbage and huge values: RESET (cursor-malformed) first, 431 past 16 KiB, 400 for bytes a header cannot hold (${RUNS} cases)`, async () => {
    const value = fc.oneof(
      fc.string({ unit: "binary-ascii", maxLength: 600 }),
      fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 2000 }),
      fc.constantFrom("1.", "1..", "1.abc.", "1.abc.ZZ", "2.abc.82AB", "1.ABC.82AB", "1.abc.82ab", "1.abc.T1_", "1.abc.T99999999999_1", "1.abc.82A"),
      fc.integer({ min: 1, max: 40_000 }).map((n) => "8".repeat(n)),
      fc.stringMatching(/^1\.[a-z0-9]{1,32}\.[0-9A-F]{0,600}$/),
    );
    await fc.assert(
      fc.asyncProperty(value, fc.boolean(), async (v, asQuery) => {
        cases++;
        const request = asQuery ? get(`${BASE}/subscribe/lei?lastEventId=${encodeURIComponent(v)}`) : get(`${BASE}/subscribe/lei`, { "Last-Event-ID": v });
        const size = Buffer.byteLength(request, "latin1");
        const a = await send(request, { streamUntil: "event: RESET" });
        const trimmed = v.replace(/^[ \t]+|[ \t]+$/g, "");
        if (!asQuery && /[^\t\x20-\x7e]/.test(v)) {
          // Node's parser refuses control characters in a header value.
          expect(a?.status ?? 400).toBe(400);
          return;
        }
        // Node's limit: 16 KiB for the request line and headers together.
        if (size > 16 * 1024) {
          expect(a?.status, `${size} bytes`).toBe(431);
          expectJsonError(a!, "E_HEADERS_TOO_LARGE");
          return;
        }
        expect(a?.status, JSON.stringify(v.slice(0, 80))).toBe(200);
        if (!asQuery && trimmed === "") return; // an empty header is no cursor: live, no RESET
        const reset = /event: RESET\ndata: (.*)\n/.exec(a!.body);
        expect(reset, `RESET for ${JSON.stringify(v.slice(0, 80))}`).not.toBeNull();
        expect(["cursor-malformed", "cursor-foreign"]).toContain((JSON.parse(reset![1]!) as { reason: string }).reason);
      }),
      params,
    );
  }, 120_000);

  it(`query strings (types, presence, snapshot, logs, lastEventId, unknown keys, bad escapes): 200 or 400 E_BAD_REQUEST as documented (${RUNS} cases)`, async () => {
    const known = ["SYNC_CANVAS", "EXECUTION_UPDATE", "LOG_STREAM", "PRESENCE"];
    const decode = (v: string) => {
      try {
        return decodeURIComponent(v);
      } catch {
        return v;
      }
    };
    const pair = fc.tuple(
      fc.constantFrom("types", "presence", "snapshot", "logs", "lastEventId", "access_token", "x", "types[]", "__proto__"),
      fc.oneof(
        fc.subarray(known, { minLength: 1 }).map((t) => t.join(",")),
        fc.string({ unit: "grapheme", maxLength: 30 }).map(encodeURIComponent),
        fc.constantFrom("", "%", "%ZZ", "0", "1", "2", "true", "false", "%31", "SYNC_CANVAS,,"),
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(pair, { maxLength: 5 }), async (pairs) => {
        cases++;
        const query = pairs.map(([k, v]) => `${k}=${v}`).join("&");
        const a = await send(get(`${BASE}/subscribe/q?${query}`));
        expect(a, query).toBeDefined();
        const types = pairs.filter(([k]) => k === "types").map(([, v]) => v);
        let typesOk = true;
        if (types.length > 1) typesOk = false;
        else if (types.length === 1) {
          const decoded = decode(types[0]!);
          typesOk = decoded !== "" && decoded.split(",").every((t) => known.includes(t));
        }
        // ?presence=: absent, or once as 0 / 1 / true / false.
        const presence = pairs.filter(([k]) => k === "presence").map(([, v]) => decode(v));
        const presenceOk = presence.length === 0 || (presence.length === 1 && ["0", "1", "true", "false"].includes(presence[0]!));
        const ok = typesOk && presenceOk;
        expect(a!.status, query).toBe(ok ? 200 : 400);
        if (!ok) expectJsonError(a!, "E_BAD_REQUEST");
      }),
      params,
    );
  }, 120_000);

  it(`header sizes and bytes that are not HTTP: 431 or 400 JSON, or the connection closes; nothing else notices (${RUNS} cases)`, async () => {
    const request = fc.oneof(
      fc.integer({ min: 0, max: 64 * 1024 }).map((n) => get("/healthz", { "X-Pad": "p".repeat(n) })),
      fc.integer({ min: 1, max: 200 }).map((n) => get("/healthz", Object.fromEntries(Array.from({ length: n }, (_, i) => [`X-H${i}`, "v".repeat(100)])))),
      fc.uint8Array({ minLength: 1, maxLength: 2048 }).map((b) => Buffer.concat([Buffer.from(b), Buffer.from("\r\n\r\n")])),
      fc.string({ unit: "binary", maxLength: 200 }).map((s) => `GET /${s} HTTP/1.1\r\nHost: x\r\n\r\n`),
      fc.constantFrom(
        "GET /healthz HTTP/1.1\r\n\r\n",
        "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
      ),
    );
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        cases++;
        const a = await send(r, { waitMs: 1500 });
        const size = typeof r === "string" ? Buffer.byteLength(r) : r.length;
        if (a === undefined) return; // the server closed (or waits for the rest of a request that never comes)
        expect(DOCUMENTED.has(a.status), `${a.status} for ${size} bytes`).toBe(true);
        // Node itself answers a bare 400 to an HTTP/1.1 request without Host (RFC 9112 §3.2), before any of our code.
        const hasHost = /\r\nhost:/i.test(typeof r === "string" ? r : Buffer.from(r).toString("latin1"));
        if (a.status === 431 || (a.status === 400 && hasHost)) expectJsonError(a);
        if (size > 17 * 1024 && typeof r === "string" && r.startsWith("GET /healthz")) expect(a.status).toBe(431);
      }),
      params,
    );
  }, 120_000);

  it("afterwards: the subscriber opened before the fuzzing still streams, and no subscription or per-IP slot is left behind", async () => {
    await t.db.collection("nodes").insertOne({ flowId: "control", n: "after fuzzing" });
    await control.until((x) => x.messages.length === 1, 10_000, "an event after the fuzzing");
    expect(control.ended).toBe(false);
    expect(control.events()[0]!.data).toMatchObject({ flowId: "control", doc: { n: "after fuzzing" } });
    await eventually("only the control subscriber left", () =>
      expect({ subscribers: t.fs.hub.subscriberCount(), streams: t.fs.limits.streamsOf("127.0.0.1") }).toEqual({ subscribers: 1, streams: 1 }),
    );
    expect((await fetch(`${t.fs.url}/healthz`)).status).toBe(200);
  });
});
