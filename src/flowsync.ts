/**
 * Wires one flowsync instance from a validated config:
 *
 *   mongo ─▶ watch (ChangeWatcher) ─▶ events (ChangeFeed: map + frame) ─▶ hub (FlowHub) ─▶ http (Koa SSE)
 *
 * Wiring only: each long-lived part is started here and registers its stop on one
 * list (lifecycle.ts), so shutdown is the start order reversed and a failed start
 * stops exactly what had started. The policies live with their owners: the wedge
 * guard in mongo/client-health.ts, the graceful HTTP close in http/server.ts.
 * `src/main.ts` adds the environment and signals; tests call `startFlowsync` directly.
 */
import { MongoClient } from "mongodb";
import type { Logger } from "pino";
import type { Config } from "./config";
import { cursorScope } from "./events/cursor";
import { flowMatchStage } from "./filters/compile";
import { loadFilters } from "./filters/load";
import { createApp } from "./http/app";
import { authEnabled, createAuthenticator } from "./http/auth";
import { StreamLimits } from "./http/limits";
import { listen } from "./http/server";
import { stopList } from "./lifecycle";
import { ClientHealth, reconnectWhenStuck } from "./mongo/client-health";
import { createMetrics, watcherLagSeconds, type Metrics } from "./metrics";
import { readSnapshot } from "./snapshot/read-snapshot";
import { ChangeFeed } from "./hub/change-feed";
import { FlowHub } from "./hub/flow-hub";
import { FlowIdCache } from "./hub/flow-id-cache";
import { Limiter } from "./hub/limiter";
import { ReplayBuffer } from "./hub/replay-buffer";
import { Subscriptions } from "./hub/subscriptions";
import { openBackend, redact, type Backend } from "./mongo/backend";
import { catchUpChanges } from "./watch/catch-up";
import { ChangeWatcher } from "./watch/change-watcher";

export interface Flowsync {
  /** Base URL of the HTTP server, e.g. http://127.0.0.1:3000 */
  readonly url: string;
  readonly mongoUrl: string;
  readonly backend: Backend["kind"];
  readonly watcher: ChangeWatcher;
  readonly hub: FlowHub;
  readonly feed: ChangeFeed;
  readonly subscriptions: Subscriptions;
  /** What `GET /metrics` serves. */
  readonly metrics: Metrics;
  /** MongoDB reachability (part of /readyz) and the wedged-driver guard. */
  readonly health: ClientHealth;
  readonly limits: StreamLimits;
  /** Graceful, idempotent: stop accepting, end every stream, close the watcher, then MongoDB. */
  stop(): Promise<void>;
}

export async function startFlowsync(config: Readonly<Config>, logger: Logger): Promise<Flowsync> {
  const filters = await loadFilters(config.filtersDir);
  // Before MongoDB: a bad key file stops start-up at once.
  const auth = authEnabled(config.auth) ? await createAuthenticator(config.auth) : undefined;
  if (!auth) logger.warn("auth is disabled: anyone who can reach this port can read every flow (set AUTH_JWT_SECRET, AUTH_JWKS_FILE or AUTH_JWKS_URL)");
  const backend = await openBackend({ mongoUrl: config.mongoUrl, mode: config.backendMode, logger, sim: { oplogSize: config.simOplogSize } });
  const started = stopList();
  started.push(() => backend.stop());
  let stopping = false;
  let health: ClientHealth | undefined;
  // The wedge guard goes first: no reconnect may start while the rest stops.
  const stopAll = () => {
    stopping = true;
    health?.close();
    return started.stopAll();
  };
  try {
    const client = new MongoClient(backend.url);
    started.push(() => client.close());
    await client.connect();
    const mongo = (health = new ClientHealth({ client, stuckAfterMs: config.monitorStuckMs, onStuck: reconnectWhenStuck(client, logger) }));
    started.push(() => mongo.close());
    const db = client.db(config.mongoDb);
    const hello = await client.db("admin").command({ hello: 1 });
    const scope = cursorScope(String(hello.setName ?? "sharded"), config.mongoDb);

    const hub = new FlowHub({ replay: new ReplayBuffer({ capacity: config.replayBufferSize }) });
    const ids = new FlowIdCache(config.flowIdCacheSize);
    const feed = new ChangeFeed({ rules: filters.byCollection, hub, ids, scope, logger: logger.child({ component: "feed" }) });
    const snapshotOptions = { db, rules: filters.byCollection, scope, logger: logger.child({ component: "snapshot" }), remember: ids.set.bind(ids) };
    const live = new ChangeWatcher({
      db,
      pipeline: filters.pipeline,
      logger: logger.child({ component: "watcher" }),
      onChange: (change) => feed.handle(change),
      onRestart: (reason, position) => feed.restarted(reason, position),
      maxAwaitTimeMS: config.changeStreamAwaitMs,
    });
    // Registered before start(): close() also settles a start that is still opening.
    started.push(() => live.close());
    await live.start();
    // From here on every change is pushed: the buffer can answer for cursors at or after this point.
    if (hub.replay.size === 0) hub.replay.reset(live.position?._data);

    const catchUps = new Limiter(config.catchUpConcurrency);
    const subscriptions = new Subscriptions({
      hub,
      feed,
      position: () => live.position,
      catchUp: (from, lastToken, flowId, signal) =>
        catchUpChanges({ db, pipeline: [...filters.pipeline, flowMatchStage(filters, flowId)], from, lastToken, signal, maxAwaitTimeMS: 200 }),
      limiter: catchUps,
      scope,
      maxBytes: config.clientBufferBytes,
      logger: logger.child({ component: "subscriptions" }),
    });

    const metrics = createMetrics({ hub, feed, subscriptions, watcher: live, catchUps });
    const limits = new StreamLimits({
      maxSubscribers: config.maxSubscribers,
      maxSubscribersPerFlow: config.maxSubscribersPerFlow,
      maxStreamsPerIp: config.maxStreamsPerIp,
      retryAfterS: config.retryAfterS,
      counts: (flowId) => hub.subscriberCount(flowId),
    });
    const app = createApp({
      basePath: config.basePath,
      subscriptions,
      snapshot: (flowId, options) => readSnapshot(snapshotOptions, flowId, options),
      flows: () => hub.flows(),
      retryMs: config.retryMs,
      heartbeatMs: config.heartbeatMs,
      logger: logger.child({ component: "http" }),
      readiness: () => ({
        ready: !stopping && live.ready && mongo.reachable,
        detail: {
          watcher: live.state,
          mongo: mongo.reachable ? "reachable" : "unreachable",
          subscribers: hub.subscriberCount(),
          flows: hub.stats.flows,
          // As flowsync_watcher_lag_seconds; null before the first position.
          lagSeconds: watcherLagSeconds(live.position, Date.now()) ?? null,
        },
      }),
      metrics,
      auth,
      limits,
      corsOrigins: config.corsOrigins,
      trustProxy: config.trustProxy,
    });
    const http = await listen(app.callback(), {
      port: config.port,
      host: config.host,
      graceMs: config.shutdownGraceMs,
      prepare: (s) => metrics.trackServer(s),
    });
    // Ending every stream is what lets the server close: SSE connections are never idle.
    started.push(() => http.close(() => hub.closeAll("shutdown")));
    const { url } = http;
    logger.info(
      {
        url,
        inspector: `${url}/`,
        mongo: redact(backend.url),
        subscribe: `${url}${config.basePath}/subscribe/<flowId>`,
        db: config.mongoDb,
        collections: filters.collections,
      },
      "flowsync listening",
    );

    let stopped: Promise<void> | undefined;
    const stop = () =>
      (stopped ??= (async () => {
        await stopAll();
        logger.info("flowsync stopped");
      })());

    return { url, mongoUrl: backend.url, backend: backend.kind, watcher: live, hub, feed, subscriptions, metrics, health: mongo, limits, stop };
  } catch (err) {
    await stopAll().catch((cleanupErr) => logger.warn({ err: cleanupErr }, "stopping what had started after a failed start-up failed too"));
    throw err;
  }
}
