/**
 * `GET /api/creative-flowboard/flows`: the active flows of one instance (the
 * inspector's list), with auth off and on (an admin token, a token without the
 * admin claim, one whose claim is not exactly `true`, none); and the watcher
 * lag and counts in /readyz.
 */
import { SignJWT, type JWTPayload } from "jose";
import { describe, expect, it } from "vitest";
import type { Flowsync } from "../../src/flowsync";
import { useBackend } from "../support/backend";
import { eventually } from "../support/eventually";
import { connected, useFlowsync } from "../support/flowsync";
import { SseClient } from "../support/sse-client";

const SECRET = "a-test-secret-that-is-at-least-32-bytes-long";

const h = useBackend();

function token(claims: JWTPayload): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
    .sign(new TextEncoder().encode(SECRET));
}

const flowsUrl = (fs: Flowsync) => `${fs.url}/api/creative-flowboard/flows`;

interface Listed {
  flowId: string;
  subscribers: number;
  lastEventAt: string | null;
  lastClusterTime: string | null;
}

async function list(
  fs: Flowsync,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: { total?: number; flows?: Listed[]; error?: { code: string } } }> {
  const res = await fetch(flowsUrl(fs), { headers });
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  return { status: res.status, body: (await res.json()) as { total?: number; flows?: Listed[]; error?: { code: string } } };
}

describe("GET /flows with auth off", () => {
  const t = useFlowsync("flows-open", {}, { backend: h });

  it("lists each flow with subscribers: their count, the last event's arrival and cluster time; a flow goes with its last subscriber", async () => {
    expect((await list(t.fs)).body).toEqual({ total: 0, flows: [] });

    const a1 = await connected(t.fs, "flow-a");
    const a2 = await connected(t.fs, "flow-a");
    const b = await connected(t.fs, "flow-b");
    const before = Date.now();
    await t.db.collection("nodes").insertOne({ flowId: "flow-a", type: "prompt" });
    // Also a write to a flow nobody watches: it is not listed.
    await t.db.collection("nodes").insertOne({ flowId: "flow-unwatched", type: "prompt" });
    await a1.until((c) => c.events().some((e) => e.type === "SYNC_CANVAS"));
    const after = Date.now();
    const event = a1.events().find((e) => e.type === "SYNC_CANVAS")!;

    const { status, body } = await list(t.fs);
    expect(status).toBe(200);
    expect(body.total).toBe(2);
    // The most recently active first.
    expect(body.flows).toEqual([
      { flowId: "flow-a", subscribers: 2, lastEventAt: expect.any(String), lastClusterTime: event.data.clusterTime },
      { flowId: "flow-b", subscribers: 1, lastEventAt: null, lastClusterTime: null },
    ]);
    const at = Date.parse(body.flows![0]!.lastEventAt!);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(after);

    await a1.close();
    await a2.close();
    await b.close();
    // The server notices a closed stream on its own schedule: poll what it reports.
    await eventually("flows gone", async () => expect((await list(t.fs)).body).toEqual({ total: 0, flows: [] }));
  });

  it("/readyz reports the instance's subscribers, flows and watcher lag", async () => {
    const c = await connected(t.fs, "flow-r");
    const res = await fetch(`${t.fs.url}/readyz`);
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ ready: true, watcher: "running", subscribers: 1, flows: 1 });
    // The watcher has a position (the stream is open), so the lag is a number, not null.
    expect(typeof body.lagSeconds).toBe("number");
    expect(body.lagSeconds).toBeGreaterThanOrEqual(0);
    await c.close();
  });
});

describe("GET /flows with auth on", () => {
  const t = useFlowsync("flows-auth", { AUTH_JWT_SECRET: SECRET, AUTH_ADMIN_CLAIM: "ops_admin" }, { backend: h });

  it("an admin token (AUTH_ADMIN_CLAIM: true) lists the flows; without the claim, or with it not exactly true, 403 E_ADMIN_REQUIRED; no token, 401", async () => {
    const reader = await token({ flows: "*" });
    const sub = new SseClient(`${t.fs.url}/api/creative-flowboard/subscribe/secret-flow`, { headers: { Authorization: `Bearer ${reader}` } });
    await sub.opened();

    const admin = await list(t.fs, { Authorization: `Bearer ${await token({ ops_admin: true })}` });
    expect(admin.status).toBe(200);
    expect(admin.body).toEqual({ total: 1, flows: [{ flowId: "secret-flow", subscribers: 1, lastEventAt: null, lastClusterTime: null }] });

    for (const [what, claims] of [
      ["a reader of every flow", { flows: "*" }],
      ["the default claim name, not the configured one", { flowsync_admin: true }],
      ['the claim as the string "true"', { ops_admin: "true" }],
      ["the claim as 1", { ops_admin: 1 }],
    ] as const) {
      const res = await list(t.fs, { Authorization: `Bearer ${await token(claims)}` });
      expect(res.status, what).toBe(403);
      expect(res.body.error?.code, what).toBe("E_ADMIN_REQUIRED");
      expect(JSON.stringify(res.body), what).not.toContain("secret-flow");
    }

    const none = await list(t.fs);
    expect(none.status).toBe(401);
    expect(none.body.error?.code).toBe("E_UNAUTHORIZED");
    expect(JSON.stringify(none.body)).not.toContain("secret-flow");
    await sub.close();
  });
});
