/**
 * The Koa application: routes, JSON errors, and the SSE endpoint. It knows the
 * hub only through `Subscriptions` and readiness through a function.
 *
 * An event stream lasts as long as its subscriber, so whatever its request leaves
 * behind is paid per idle subscriber. Koa's own request handling registers
 * `onFinished(res, …)` for every request, whose listeners (on the response and the
 * socket, with a closure over the context) stay until the response ends: for a
 * stream, Koa's context, request and response stayed alive with every connection
 * (heap snapshots: BENCHMARKS.md's notes). So `GET …/subscribe/:flowId` is answered
 * beside Koa's handler (`LeanStreamsApp`): the same middleware functions in the
 * same order (JSON errors, the percent-encoding check, CORS, the route) on a
 * context made by Koa, an error answered as Koa answers a JSON body, and nothing
 * of the context kept once the stream is open. Every other request, and any
 * request the shortcut does not recognise exactly (HEAD, another spelling of the
 * path), goes through Koa as before.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
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
  const heartbeats = o.heartbeats ?? new Heartbeats();
  const router = new Router();
  // Subscribe and snapshot: the token must grant the flow (401 / 403), when auth is on.
  const authorize = (ctx: Koa.Context, flowId: string): Promise<Grant> | undefined =>
    o.auth?.authorize({ authorization: ctx.get("Authorization") || undefined, cookie: ctx.cookies.get(o.auth.cookie), query: ctx.query.access_token }, flowId);

  const subscribe = async (ctx: Koa.Context, flowIdParam: string | undefined): Promise<void> => {
    const flowId = validFlowId(flowIdParam);
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
    // What the connection keeps until it ends: only these two (not this scope, which holds the SNAPSHOT frame and the grant).
    const ends: Ends = { release, leave: undefined };
    const open = (onClose: (reason: CloseReason) => void) => {
      if (!presence) return o.subscriptions.open(flowId, { lastEventId, types, first, onClose });
      // One synchronous step: listed, registered and given the list now, so every later change follows as a frame.
      if (listed) ends.leave = presence.join(flowId, identity(grant));
      const current = !types || types.has(PRESENCE) ? presence.initialFrame(flowId) : "";
      return o.subscriptions.open(flowId, { lastEventId, types, first: first === undefined && current === "" ? undefined : (first ?? "") + current, onClose });
    };
    streamSubscription(ctx, open, {
      retryMs: o.retryMs,
      heartbeatMs: o.heartbeatMs,
      heartbeats,
      expiresAt: grant?.expiresAt,
      logger: o.logger,
      onEnd: endOf(ends),
    });
  };
  router.get(`${o.basePath}/subscribe/:flowId`, (ctx) => subscribe(ctx, ctx.params.flowId));

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

  // Ahead of every route, in this order; the stream route's own path (LeanStreamsApp) runs the same list, then the route.
  const front: Koa.Middleware[] = [errorsAsJson(o.logger), wellEncoded];
  if (o.corsOrigins && o.corsOrigins.length > 0) front.push(cors(o.corsOrigins));
  const stream = (ctx: Koa.Context, flowId: string) => inOrder(front, ctx, () => subscribe(ctx, flowId));
  const app = new LeanStreamsApp(o.trustProxy ?? false, `${o.basePath}/subscribe/`, stream);
  for (const middleware of front) app.use(middleware);
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

/**
 * Koa, except that a GET of an event stream (`<prefix><flowId>`, spelled exactly so) is answered by
 * `stream` on a context of Koa's making, without Koa's per-request `onFinished` (see the module comment).
 * `stream` must leave the context either streaming (`ctx.respond = false`) or with a JSON body.
 */
class LeanStreamsApp extends Koa {
  readonly #prefix: string;
  readonly #stream: (ctx: Koa.Context, flowId: string) => Promise<void>;

  constructor(proxy: boolean, prefix: string, stream: (ctx: Koa.Context, flowId: string) => Promise<void>) {
    super({ proxy });
    this.#prefix = prefix;
    this.#stream = stream;
  }

  override callback(): ReturnType<Koa["callback"]> {
    const koa = super.callback();
    return (req, res) => {
      const segment = req.method === "GET" ? streamSegment(req.url, this.#prefix) : undefined;
      if (segment === undefined) return koa(req, res);
      // Only HTTP/1 servers call this app (src/http/server.ts).
      const ctx = this.createContext(req as IncomingMessage, res as ServerResponse);
      // As Koa's handleRequest: a request nothing answers is a 404.
      ctx.res.statusCode = 404;
      // As Koa: an error the middleware did not answer (or one of the answer itself) goes to ctx.onerror.
      return this.#stream(ctx, decodeSegment(segment))
        .then(() => respondJson(ctx))
        .catch((err: unknown) => ctx.onerror(err as Error));
    };
  }
}

/** The flowId segment of `url` if it is `<prefix><segment>[?query]`, one segment, exactly so; else undefined. */
function streamSegment(url: string | undefined, prefix: string): string | undefined {
  if (url === undefined || !url.startsWith(prefix)) return undefined;
  const q = url.indexOf("?", prefix.length);
  const segment = url.slice(prefix.length, q < 0 ? undefined : q);
  return segment === "" || segment.includes("/") || segment.includes("#") ? undefined : segment;
}

/** As the router decodes a parameter (a bad escape stays as it is; `wellEncoded` refuses it first). */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** What Koa's respond does with a JSON body (an error answer): the rest of the stream route writes its own response. */
function respondJson(ctx: Koa.Context): void {
  if (ctx.respond === false) return;
  const res = ctx.res;
  if (!ctx.writable) {
    res.end();
    return;
  }
  if (typeof ctx.body !== "object" || ctx.body === null) {
    ctx.onerror(new Error("the stream route left no JSON answer"));
    return;
  }
  const body = JSON.stringify(ctx.body);
  if (!res.headersSent) ctx.length = Buffer.byteLength(body);
  res.end(body);
}

interface Ends {
  release: (() => void) | undefined;
  leave: (() => void) | undefined;
}

/** A stream's end: off the presence list, its admission slot released (a closure over nothing else). */
function endOf(ends: Ends): () => void {
  return () => {
    ends.leave?.();
    ends.release?.();
  };
}

/** Runs `middleware` on `ctx` as Koa would (each one's `next` is the rest), then `last`. */
async function inOrder(middleware: readonly Koa.Middleware[], ctx: Koa.Context, last: () => Promise<void>): Promise<void> {
  const step = async (i: number): Promise<void> => {
    const m = middleware[i];
    if (m === undefined) return last();
    await m(ctx, () => step(i + 1));
  };
  return step(0);
}

/** The router would quietly keep a badly escaped segment as it is ("%ZZ" as a flowId). */
async function wellEncoded(ctx: Koa.Context, next: () => Promise<unknown>): Promise<void> {
  try {
    decodeURIComponent(ctx.path);
  } catch {
    throw new FlowsyncError("E_BAD_REQUEST", "the URL path has invalid percent-encoding");
  }
  await next();
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
