/**
 * The Koa application: routes, JSON errors, and the SSE endpoint. It knows the
 * hub only through `Subscriptions` and readiness through a function.
 */
import Router from "@koa/router";
import Koa from "koa";
import type { Logger } from "pino";
import { FlowsyncError, isFlowsyncError } from "../errors";
import { isValidFlowId } from "../events/schemas";
import type { Subscriptions } from "../hub/subscriptions";
import { streamSubscription, type SseOptions } from "./sse-stream";

export interface AppOptions extends SseOptions {
  basePath: string;
  subscriptions: Subscriptions;
  /** Whether MongoDB is reachable and the watcher's stream is open. */
  readiness: () => { ready: boolean; detail: Record<string, unknown> };
  logger: Logger;
}

export function createApp(o: AppOptions): Koa {
  const app = new Koa();
  const router = new Router();

  router.get(`${o.basePath}/subscribe/:flowId`, (ctx) => {
    const flowId = ctx.params.flowId;
    if (!flowId || !isValidFlowId(flowId)) {
      throw new FlowsyncError("E_FLOW_ID_INVALID", "flowId must be 1-256 characters without control characters");
    }
    // Mercure's rule: the header wins over the query parameter.
    const header = ctx.get("Last-Event-ID");
    const query = ctx.query.lastEventId;
    const lastEventId = header !== "" ? header : typeof query === "string" ? query : undefined;
    const subscription = o.subscriptions.open(flowId, lastEventId);
    o.logger.debug({ flowId, cursor: lastEventId }, "subscriber connected");
    streamSubscription(ctx, subscription, o);
  });

  router.get("/healthz", (ctx) => {
    ctx.body = { status: "ok" };
  });

  router.get("/readyz", (ctx) => {
    const { ready, detail } = o.readiness();
    ctx.status = ready ? 200 : 503;
    ctx.body = { ready, ...detail };
  });

  app.use(errorsAsJson(o.logger));
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

/** Every error answer is `{error: {code, message}}` with the right status. */
function errorsAsJson(logger: Logger): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const known = isFlowsyncError(err)
        ? err
        : new FlowsyncError(statusOf(err) < 500 ? "E_BAD_REQUEST" : "E_INTERNAL", (err as Error).message, { status: statusOf(err), expose: statusOf(err) < 500, cause: err });
      if (known.status >= 500) logger.error({ err, path: ctx.path }, "request failed");
      ctx.status = known.status;
      ctx.body = known.toJSON();
    }
  };
}

function statusOf(err: unknown): number {
  const status = (err as { status?: unknown }).status;
  return typeof status === "number" && status >= 400 && status < 600 ? status : 500;
}
