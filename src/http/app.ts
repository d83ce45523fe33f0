/**
 * The Koa application: routes, JSON errors, and the SSE endpoint. It knows the
 * hub only through `Subscriptions` and readiness through a function.
 */
import { randomUUID } from "node:crypto";
import Router from "@koa/router";
import Koa from "koa";
import type { Logger } from "pino";
import { FlowsyncError, isFlowsyncError } from "../errors";
import { DOC_EVENT_TYPES, isValidFlowId, PRESENCE, type SnapshotData } from "../events/schemas";
import type { FlowInfo } from "../hub/flow-hub";
import type { Presence, PresenceIdentity } from "../hub/presence";
import type { CloseReason } from "../hub/subscriber-queue";
import type { Subscriptions } from "../hub/subscriptions";
import { clusterTimeOfToken } from "../token";
import type { Authenticator, Grant } from "./auth";
import { cors } from "./cors";
import { mountInspector } from "./inspector";
import type { StreamLimits } from "./limits";
import { formatEvent } from "../events/sse-frame";
import { Heartbeats } from "./heartbeats";
import { streamSubscription, type SseOptions } from "./sse-stream";

export interface AppOptions extends SseOptions {
  basePath: string;
  subscriptions: Subscriptions;
  /** The flow's state at one point in time, with the cursor that continues after it. */
  snapshot: (flowId: string, options: { logs: boolean }) => Promise<SnapshotData>;
  /** The flows with subscribers on this instance (FlowHub.flows), for `GET …/flows`. */
  flows: () => readonly FlowInfo[];
  /** Whether MongoDB is reachable and the watcher's stream is open. */
  readiness: () => { ready: boolean; detail: Record<string, unknown> };
  /** `GET /metrics` (Prometheus text format); no route when absent. */
  metrics?: { contentType: string; text(): Promise<string> };
  /** JWT access control of the flow routes (src/http/auth.ts); absent = open. */
  auth?: Authenticator;
  /** Admission limits of event streams (src/http/limits.ts). */
  limits?: StreamLimits;
  /** CORS_ORIGINS (src/http/cors.ts); empty = no CORS headers. */
  corsOrigins?: readonly string[];
  /** Take the client IP from X-Forwarded-For (behind a trusted proxy). */
  trustProxy?: boolean;
  /** Who is on each flow (PRESENCE=on): subscribers are listed, and get PRESENCE frames. */
  presence?: Presence;
  /** The heartbeat registry of this app's SSE connections; default a new one (tests may inject their own). */
  heartbeats?: Heartbeats;
  logger: Logger;
}

export function createApp(o: AppOptions): Koa {
  const app = new Koa({ proxy: o.trustProxy ?? false });
  const heartbeats = o.heartbeats ?? new Heartbeats();
  const router = new Router();
  // Subscribe and snapshot: the token must grant the flow (401 / 403), when auth is on.
  const authorize = (ctx: Koa.Context, flowId: string): Promise<Grant> | undefined =>
    o.auth?.authorize({ authorization: ctx.get("Authorization") || undefined, cookie: ctx.cookies.get(o.auth.cookie), query: ctx.query.access_token }, flowId);

  router.get(`${o.basePath}/subscribe/:flowId`, async (ctx) => {
    const flowId = validFlowId(ctx.params.flowId);
    const grant = await authorize(ctx, flowId);
    const types = eventTypes(ctx.query.types);
    // `?presence=0`: watch without being listed (the inspector); PRESENCE frames still come unless `types` leaves them out.
    const listed = presenceFlag(ctx.query.presence);
    if (ctx.method === "HEAD") {
      // What a GET would answer, without opening a subscription nobody can read.
      ctx.status = 200;
      ctx.type = "text/event-stream; charset=utf-8";
      return;
    }
    let first: string | undefined;
    let lastEventId: string | undefined;
    if (flag(ctx.query.snapshot)) {
      // First paint in one request: the state, then every change after it (its cursor wins over any other).
      const snapshot = await o.snapshot(flowId, { logs: flag(ctx.query.logs) });
      first = formatEvent({ id: snapshot.cursor, event: "SNAPSHOT", data: JSON.stringify(snapshot) });
      lastEventId = snapshot.cursor;
    } else {
      // Mercure's rule: the header wins over the query parameter.
      const header = ctx.get("Last-Event-ID");
      const query = ctx.query.lastEventId;
      // A repeated ?lastEventId= is no cursor at all: "" decodes as malformed, so the client gets RESET.
      lastEventId = header !== "" ? header : query === undefined ? undefined : typeof query === "string" ? query : "";
    }
    // Admission and registration in one synchronous step (limits.ts).
    const release = o.limits?.admit(ctx.ip, flowId);
    o.logger.debug({ flowId, cursor: lastEventId }, "subscriber connected");
    const { presence } = o;
    let leave: (() => void) | undefined;
    const open = (onClose: (reason: CloseReason) => void) => {
      if (!presence) return o.subscriptions.open(flowId, { lastEventId, types, first, onClose });
      // One synchronous step: listed, registered and given the list now, so every later change follows as a frame.
      if (listed) leave = presence.join(flowId, identity(grant));
      const current = !types || types.has(PRESENCE) ? presence.initialFrame(flowId) : "";
      return o.subscriptions.open(flowId, { lastEventId, types, first: first === undefined && current === "" ? undefined : (first ?? "") + current, onClose });
    };
    streamSubscription(ctx, open, {
      ...o,
      heartbeats,
      expiresAt: grant?.expiresAt,
      onEnd: () => {
        leave?.();
        release?.();
      },
    });
  });

  router.get(`${o.basePath}/flows/:flowId/snapshot`, async (ctx) => {
    const flowId = validFlowId(ctx.params.flowId);
    await authorize(ctx, flowId);
    ctx.body = await o.snapshot(flowId, { logs: flag(ctx.query.logs) });
  });

  // The active flows of this instance, for the inspector. An admin's view: with auth on, only a token whose
  // admin claim is true sees it (another token could learn other flows' ids and activity).
  router.get(`${o.basePath}/flows`, async (ctx) => {
    if (o.auth) {
      const grant = await o.auth.authenticate({
        authorization: ctx.get("Authorization") || undefined,
        cookie: ctx.cookies.get(o.auth.cookie),
        query: ctx.query.access_token,
      });
      if (!grant.admin) throw new FlowsyncError("E_ADMIN_REQUIRED", "listing flows needs a token with the admin claim");
    }
    ctx.set("Cache-Control", "no-store");
    ctx.body = flowList(o.flows());
  });

  router.get("/healthz", (ctx) => {
    ctx.body = { status: "ok" };
  });

  router.get("/readyz", (ctx) => {
    const { ready, detail } = o.readiness();
    ctx.status = ready ? 200 : 503;
    ctx.body = { ready, ...detail };
  });

  const { metrics } = o;
  if (metrics) {
    router.get("/metrics", async (ctx) => {
      ctx.body = await metrics.text();
      ctx.type = metrics.contentType;
    });
  }

  // The inspector page at `/` (src/http/inspector.ts).
  mountInspector(router, { basePath: o.basePath, logger: o.logger });

  app.use(errorsAsJson(o.logger));
  app.use(async (ctx, next) => {
    // The router would quietly keep a badly escaped segment as it is ("%ZZ" as a flowId).
    try {
      decodeURIComponent(ctx.path);
    } catch {
      throw new FlowsyncError("E_BAD_REQUEST", "the URL path has invalid percent-encoding");
    }
    await next();
  });
  if (o.corsOrigins && o.corsOrigins.length > 0) app.use(cors(o.corsOrigins));
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: false }));
  app.use((ctx) => {
    if (ctx.status === 404 && ctx.body === undefined) throw new FlowsyncError("E_NOT_FOUND", `no route for ${ctx.method} ${ctx.path}`);
  });
  app.on("error", (err, ctx) => {
    // A client leaving mid-stream is normal for SSE.
    if ((err as NodeJS.ErrnoException).code === "ERR_STREAM_PREMATURE_CLOSE" || (err as NodeJS.ErrnoException).code === "ECONNRESET") return;
    o.logger.error({ err, path: ctx?.path }, "request failed");
  });
  return app;
}

function validFlowId(flowId: string | undefined): string {
  if (!flowId || !isValidFlowId(flowId)) {
    throw new FlowsyncError("E_FLOW_ID_INVALID", "flowId must be 1-256 characters without control characters");
  }
  return flowId;
}

/** At most this many flows in one answer (the most recently active first); `total` counts them all. */
export const MAX_LISTED_FLOWS = 1000;

interface ListedFlow {
  flowId: string;
  subscribers: number;
  /** When this instance received the flow's last event (ISO 8601), while the flow had subscribers here. */
  lastEventAt: string | null;
  /** That event's cluster time, `"<seconds>.<increment>"` like the events' `clusterTime`. */
  lastClusterTime: string | null;
}

function flowList(flows: readonly FlowInfo[]): { total: number; flows: ListedFlow[] } {
  const sorted = [...flows].sort((a, b) => (b.lastEventAt ?? -1) - (a.lastEventAt ?? -1) || (a.flowId < b.flowId ? -1 : a.flowId > b.flowId ? 1 : 0));
  return {
    total: flows.length,
    flows: sorted.slice(0, MAX_LISTED_FLOWS).map((f) => {
      const time = clusterTimeOfToken(f.lastToken);
      return {
        flowId: f.flowId,
        subscribers: f.subscribers,
        lastEventAt: f.lastEventAt === undefined ? null : new Date(f.lastEventAt).toISOString(),
        lastClusterTime: time ? `${time.t}.${time.i}` : null,
      };
    }),
  };
}

function flag(value: unknown): boolean {
  return value === "1" || value === "true";
}

const KNOWN_TYPES: ReadonlySet<string> = new Set([...DOC_EVENT_TYPES, PRESENCE]);

/** `?presence=0|1` (default listed). */
function presenceFlag(value: unknown): boolean {
  if (value === undefined || value === "1" || value === "true") return true;
  if (value === "0" || value === "false") return false;
  throw new FlowsyncError("E_BAD_REQUEST", "presence must be 0 or 1");
}

/**
 * Who a connection is on the presence list: with auth, the token's `sub` and its public claims
 * (the grant holds no other); without auth (or without `sub`), an anonymous id of its own.
 */
function identity(grant: Grant | undefined): PresenceIdentity {
  const sub = grant?.subject;
  return sub === undefined ? { id: `anonymous-${randomUUID()}` } : { id: sub, ...grant!.claims };
}

/** `?types=SYNC_CANVAS,EXECUTION_UPDATE,PRESENCE` → that set; RESET and SNAPSHOT always pass. */
function eventTypes(value: unknown): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw new FlowsyncError("E_BAD_REQUEST", "types must be a comma-separated list of event types");
  const types = new Set(value.split(","));
  for (const t of types)
    if (!KNOWN_TYPES.has(t)) throw new FlowsyncError("E_BAD_REQUEST", `unknown event type '${t}' in types (known: ${[...KNOWN_TYPES].join(", ")})`);
  return types;
}

/** Every error answer is `{error: {code, message}}` with the right status. */
function errorsAsJson(logger: Logger): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const known = isFlowsyncError(err)
        ? err
        : new FlowsyncError(statusOf(err) < 500 ? "E_BAD_REQUEST" : "E_INTERNAL", (err as Error).message, {
            status: statusOf(err),
            expose: statusOf(err) < 500,
            cause: err,
          });
      if (known.status >= 500) logger.error({ err, path: ctx.path }, "request failed");
      ctx.status = known.status;
      ctx.set(known.headers);
      ctx.body = known.toJSON();
    }
  };
}

function statusOf(err: unknown): number {
  const status = (err as { status?: unknown }).status;
  return typeof status === "number" && status >= 400 && status < 600 ? status : 500;
}
