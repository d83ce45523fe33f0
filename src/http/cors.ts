/**
 * CORS for browsers on other origins (CORS_ORIGINS). CORS is not access
 * control — a non-browser client ignores it; the token is (auth.ts) — it only
 * decides which web pages may read our answers.
 *
 *   request from an allowed origin   Access-Control-Allow-Origin: <that origin>, Vary: Origin,
 *                                    Allow-Credentials (so cookies and EventSource withCredentials
 *                                    work), Expose-Headers: Retry-After
 *   preflight (OPTIONS) from one     204 with the allowed method (GET) and request headers
 *                                    (Authorization, Last-Event-ID), cached for 10 minutes
 *   preflight from any other origin  403 E_ORIGIN_NOT_ALLOWED
 *   anything else                    no CORS headers: the browser keeps the answer from the page
 *
 * `*` allows every origin, without credentials (the CORS rule for a wildcard).
 */
import type Koa from "koa";
import { FlowsyncError } from "../errors";

export function cors(origins: readonly string[]): Koa.Middleware {
  const any = origins.includes("*");
  const allowed = new Set(origins);
  return async (ctx, next) => {
    const origin = ctx.get("Origin");
    ctx.vary("Origin");
    const ok = origin !== "" && (any || allowed.has(origin));
    if (ok) {
      ctx.set("Access-Control-Allow-Origin", any ? "*" : origin);
      if (!any) ctx.set("Access-Control-Allow-Credentials", "true");
      ctx.set("Access-Control-Expose-Headers", "Retry-After");
    }
    if (ctx.method === "OPTIONS" && ctx.get("Access-Control-Request-Method") !== "") {
      if (!ok) throw new FlowsyncError("E_ORIGIN_NOT_ALLOWED", `origin '${origin.slice(0, 200)}' is not allowed (CORS_ORIGINS)`);
      ctx.set("Access-Control-Allow-Methods", "GET, OPTIONS");
      ctx.set("Access-Control-Allow-Headers", "Authorization, Last-Event-ID, Content-Type");
      ctx.set("Access-Control-Max-Age", "600");
      ctx.status = 204;
      return;
    }
    await next();
  };
}
