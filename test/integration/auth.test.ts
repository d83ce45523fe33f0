/**
 * Access control (src/http/auth.ts) and CORS (src/http/cors.ts), end to end:
 * tokens signed here with jose (HS256; RS256 from a JWKS file; ES256 from a JWKS
 * URL served on 127.0.0.1), for subscribe and snapshot.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Flowsync } from "../../src/flowsync";
import { uniqueDb, useBackend } from "../support/backend";
import { startTestFlowsync, subscribeUrl, useFlowsync } from "../support/flowsync";
import { LogSink } from "../support/log-sink";
import { SseClient } from "../support/sse-client";

const SECRET = "a-test-secret-that-is-at-least-32-bytes-long";
const hs = new TextEncoder().encode(SECRET);

const h = useBackend();
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "flowsync-auth-"));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** An HS256 token; `expIn` seconds from now (null: no exp). */
function hsToken(claims: JWTPayload, expIn: number | null = 300, key: Uint8Array = hs): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt();
  if (expIn !== null) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + expIn);
  return jwt.sign(key);
}

const snapshotUrl = (fs: Flowsync, flowId: string, query = "") => `${fs.url}/api/creative-flowboard/flows/${encodeURIComponent(flowId)}/snapshot${query}`;

async function status(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: { error?: { code: string } }; headers: Headers }> {
  const ac = new AbortController();
  const res = await fetch(url, { headers, signal: ac.signal });
  // An accepted stream never ends by itself: read the status, then hang up.
  const body = (res.headers.get("content-type")?.startsWith("application/json") ? await res.json() : {}) as { error?: { code: string } };
  ac.abort();
  return { status: res.status, body, headers: res.headers };
}

describe("JWT access control (HS256)", () => {
  const logs = new LogSink();
  const t = useFlowsync("auth", { AUTH_JWT_SECRET: SECRET, AUTH_CLOCK_TOLERANCE_S: "0" }, { backend: h, logger: logs.logger("info") });

  it("does not warn about disabled auth when a key is configured", () => {
    expect(logs.find("auth is disabled")).toEqual([]);
  });

  it("no token, a malformed one, a wrong signature, an expired one, one without exp, alg none: 401 with WWW-Authenticate, for subscribe and snapshot", async () => {
    const unsigned = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify({ flows: "*", exp: 9_999_999_999 })).toString("base64url")}.`;
    const cases: Array<[string, Record<string, string>]> = [
      ["no token", {}],
      ["not a JWT", { Authorization: "Bearer garbage" }],
      ["not Bearer", { Authorization: `Basic ${Buffer.from("a:b").toString("base64")}` }],
      ["wrong secret", { Authorization: `Bearer ${await hsToken({ flows: "*" }, 300, new TextEncoder().encode("another-secret-another-secret-another"))}` }],
      ["expired", { Authorization: `Bearer ${await hsToken({ flows: "*" }, -10)}` }],
      ["no exp", { Authorization: `Bearer ${await hsToken({ flows: "*" }, null)}` }],
      ["alg none", { Authorization: `Bearer ${unsigned}` }],
    ];
    for (const [what, headers] of cases) {
      for (const url of [subscribeUrl(t.fs, "a"), snapshotUrl(t.fs, "a")]) {
        const res = await status(url, headers);
        expect(res.status, `${what}: ${url}`).toBe(401);
        expect(res.body.error?.code).toBe("E_UNAUTHORIZED");
        expect(res.headers.get("www-authenticate")).toMatch(/^Bearer /);
      }
    }
  });

  it("grants the flows its claim names, exactly or by * pattern; any other flow is 403, for subscribe and snapshot", async () => {
    const token = await hsToken({ sub: "u1", flows: ["a", "team-1/*"] });
    const auth = { Authorization: `Bearer ${token}` };
    for (const flowId of ["a", "team-1/x", "team-1/"]) {
      expect((await status(subscribeUrl(t.fs, flowId), auth)).status, flowId).toBe(200);
      expect((await status(snapshotUrl(t.fs, flowId), auth)).status, flowId).toBe(200);
    }
    for (const flowId of ["b", "aa", "team-2/x", "team-1"]) {
      const sub = await status(subscribeUrl(t.fs, flowId), auth);
      expect(sub.status, flowId).toBe(403);
      expect(sub.body.error?.code).toBe("E_FORBIDDEN");
      expect((await status(snapshotUrl(t.fs, flowId), auth)).status, flowId).toBe(403);
    }
    // A token without the claim (or with an unusable one) reads nothing.
    for (const claims of [{}, { flows: 42 }, { flows: [1, 2] }]) {
      expect((await status(subscribeUrl(t.fs, "a"), { Authorization: `Bearer ${await hsToken(claims)}` })).status).toBe(403);
    }
    expect((await status(subscribeUrl(t.fs, "anything"), { Authorization: `Bearer ${await hsToken({ flows: "*" })}` })).status).toBe(200);
  });

  it("takes the token from the Authorization header, the cookie, or ?access_token= (the header wins)", async () => {
    const good = await hsToken({ flows: ["a"] });
    const other = await hsToken({ flows: ["b"] });
    expect((await status(subscribeUrl(t.fs, "a"), { Cookie: `flowsync_token=${good}` })).status).toBe(200);
    expect((await status(subscribeUrl(t.fs, "a", `?access_token=${good}`))).status).toBe(200);
    expect((await status(snapshotUrl(t.fs, "a", `?access_token=${good}`))).status).toBe(200);
    // Header first: a token for another flow in the header is not rescued by a good one in the query or cookie.
    expect(
      (await status(subscribeUrl(t.fs, "a", `?access_token=${good}`), { Authorization: `Bearer ${other}`, Cookie: `flowsync_token=${good}` })).status,
    ).toBe(403);
    expect((await status(subscribeUrl(t.fs, "a", `?access_token=${good}&access_token=${good}`))).status).toBe(401);
  });

  it("closes a stream when its token expires; the client reconnects with a fresh token and its last id and misses nothing", async () => {
    const nodes = t.db.collection("nodes");
    const c = new SseClient(subscribeUrl(t.fs, "exp"), { headers: { Authorization: `Bearer ${await hsToken({ flows: ["exp"] }, 2)}` } });
    await c.opened();
    await nodes.insertOne({ flowId: "exp", n: 1 });
    await c.until((x) => x.messages.length === 1, 10_000, "an event");
    const opened = Date.now();
    await c.until((x) => x.ended, 5000, "the stream to end at the token's expiry");
    expect(Date.now() - opened).toBeLessThan(4000);
    expect(c.raw).toContain(": token expired");
    await nodes.insertOne({ flowId: "exp", n: 2 });

    const again = new SseClient(subscribeUrl(t.fs, "exp"), {
      lastEventId: c.lastEventId,
      headers: { Authorization: `Bearer ${await hsToken({ flows: ["exp"] }, 300)}` },
    });
    await again.until((x) => x.messages.length === 1, 10_000, "the missed event");
    expect([...c.events(), ...again.events()].map((e) => (e.data.doc as { n: number }).n)).toEqual([1, 2]);
    await again.close();
  });
});

describe("JWT access control with a JWKS (RS256 from a file, ES256 from a URL)", () => {
  it("RS256 keys from AUTH_JWKS_FILE, with issuer and audience checks", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "rs-1", alg: "RS256", use: "sig" };
    const file = path.join(tmp, "jwks.json");
    await writeFile(file, JSON.stringify({ keys: [jwk] }));
    const fs = await startTestFlowsync(h.backend.url, {
      MONGO_DB: uniqueDb("auth"),
      AUTH_JWKS_FILE: file,
      AUTH_ISSUER: "https://issuer.test",
      AUTH_AUDIENCE: "flowsync",
    });
    try {
      const sign = (claims: JWTPayload, iss = "https://issuer.test", aud = "flowsync") =>
        new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "rs-1" }).setIssuer(iss).setAudience(aud).setExpirationTime("5m").sign(privateKey);
      expect((await status(subscribeUrl(fs, "r"), { Authorization: `Bearer ${await sign({ flows: ["r"] })}` })).status).toBe(200);
      expect((await status(subscribeUrl(fs, "x"), { Authorization: `Bearer ${await sign({ flows: ["r"] })}` })).status).toBe(403);
      expect((await status(subscribeUrl(fs, "r"), { Authorization: `Bearer ${await sign({ flows: ["r"] }, "https://evil.test")}` })).status).toBe(401);
      expect((await status(subscribeUrl(fs, "r"), { Authorization: `Bearer ${await sign({ flows: ["r"] }, undefined, "other")}` })).status).toBe(401);
      // HS256 is not accepted when only a JWKS is configured (no algorithm confusion with the public key).
      const confused = await new SignJWT({ flows: ["r"] })
        .setProtectedHeader({ alg: "HS256" })
        .setExpirationTime("5m")
        .sign(new TextEncoder().encode(JSON.stringify(jwk)));
      expect((await status(subscribeUrl(fs, "r"), { Authorization: `Bearer ${confused}` })).status).toBe(401);
    } finally {
      await fs.stop();
    }
  });

  it("ES256 keys from AUTH_JWKS_URL (a local server); a key it does not publish is refused", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const stranger = await generateKeyPair("ES256");
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "es-1", alg: "ES256", use: "sig" }] });
    let fetched = 0;
    const server = http.createServer((req, res) => {
      fetched++;
      res.writeHead(200, { "Content-Type": "application/json" }).end(jwks);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
    const fs = await startTestFlowsync(h.backend.url, { MONGO_DB: uniqueDb("auth"), AUTH_JWKS_URL: jwksUrl, AUTH_FLOWS_CLAIM: "https://flowsync/flows" });
    try {
      const sign = (key: typeof privateKey, kid: string) =>
        new SignJWT({ "https://flowsync/flows": ["e-*"] }).setProtectedHeader({ alg: "ES256", kid }).setExpirationTime("5m").sign(key);
      expect((await status(subscribeUrl(fs, "e-1"), { Authorization: `Bearer ${await sign(privateKey, "es-1")}` })).status).toBe(200);
      expect((await status(snapshotUrl(fs, "e-2"), { Authorization: `Bearer ${await sign(privateKey, "es-1")}` })).status).toBe(200);
      expect((await status(subscribeUrl(fs, "f-1"), { Authorization: `Bearer ${await sign(privateKey, "es-1")}` })).status).toBe(403);
      expect((await status(subscribeUrl(fs, "e-1"), { Authorization: `Bearer ${await sign(stranger.privateKey, "es-1")}` })).status).toBe(401);
      expect((await status(subscribeUrl(fs, "e-1"), { Authorization: `Bearer ${await sign(stranger.privateKey, "es-9")}` })).status).toBe(401);
      expect(fetched).toBeGreaterThan(0);
    } finally {
      await fs.stop();
      server.close();
    }
  });
});

describe("auth disabled (the default) and CORS", () => {
  it("warns at start-up that auth is disabled, and serves every flow", async () => {
    const logs = new LogSink();
    const fs = await startTestFlowsync(h.backend.url, { MONGO_DB: uniqueDb("auth") }, { logger: logs.logger("info") });
    try {
      const [warning] = logs.find("auth is disabled");
      expect(warning).toMatchObject({ level: 40 });
      expect((await status(subscribeUrl(fs, "any"))).status).toBe(200);
    } finally {
      await fs.stop();
    }
  });

  it("CORS_ORIGINS: allowed origins get the CORS headers and their preflight; others get none, and their preflight 403", async () => {
    const fs = await startTestFlowsync(h.backend.url, { MONGO_DB: uniqueDb("auth"), CORS_ORIGINS: "https://app.example, http://localhost:4200" });
    try {
      const url = subscribeUrl(fs, "c");
      const pre = await fetch(url, {
        method: "OPTIONS",
        headers: { Origin: "https://app.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization,last-event-id" },
      });
      expect(pre.status).toBe(204);
      expect(pre.headers.get("access-control-allow-origin")).toBe("https://app.example");
      expect(pre.headers.get("access-control-allow-credentials")).toBe("true");
      expect(pre.headers.get("access-control-allow-headers")).toMatch(/Authorization/);
      expect(pre.headers.get("access-control-allow-headers")).toMatch(/Last-Event-ID/);

      const allowed = await status(url, { Origin: "http://localhost:4200" });
      expect(allowed.status).toBe(200);
      expect(allowed.headers.get("access-control-allow-origin")).toBe("http://localhost:4200");
      expect(allowed.headers.get("vary")).toMatch(/Origin/);

      const other = await status(url, { Origin: "https://evil.example" });
      expect(other.headers.get("access-control-allow-origin")).toBeNull();
      const denied = await fetch(url, { method: "OPTIONS", headers: { Origin: "https://evil.example", "Access-Control-Request-Method": "GET" } });
      expect(denied.status).toBe(403);
      expect(await denied.json()).toMatchObject({ error: { code: "E_ORIGIN_NOT_ALLOWED" } });
      expect(denied.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await fs.stop();
    }
  });
});
