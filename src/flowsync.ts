/**
 * Wires one flowsync instance from a validated config:
 *
 *   mongo ─▶ watch (ChangeWatcher) ─▶ events (ChangeFeed: map + frame) ─▶ hub (FlowHub) ─▶ http (Koa SSE)
 *
 * and owns its shutdown order. `src/main.ts` adds the environment and signals;
 * tests call `startFlowsync` directly.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { MongoClient } from "mongodb";
import type { Logger } from "pino";
import type { Config } from "./config";
import { cursorScope } from "./events/cursor";
import { flowMatchStage } from "./filters/compile";
import { loadFilters } from "./filters/load";
import { createApp } from "./http/app";
import { authEnabled, createAuthenticator } from "./http/auth";
import { answerClientErrors } from "./http/client-errors";
import { StreamLimits } from "./http/limits";
import { ClientHealth } from "./mongo/client-health";
import { createMetrics, type Metrics } from "./metrics";
import { readSnapshot } from "./snapshot/read-snapshot";
import { ChangeFeed } from "./hub/change-feed";
import { FlowHub } from "./hub/flow-hub";
import { FlowIdCache } from "./hub/flow-id-cache";
import { Limiter } from "./hub/limiter";
import { ReplayBuffer } from "./hub/replay-buffer";
import { Subscriptions } from "./hub/subscriptions";
import { openBackend, type Backend } from "./mongo/backend";
import { catchUpChanges } from "./watch/catch-up";
import { ChangeWatcher } from "./watch/change-watcher";
import { squashError } from "./errors";

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
  const client = new MongoClient(backend.url);
  let server: http.Server | undefined;
  let watcher: ChangeWatcher | undefined;
  let health: ClientHealth | undefined;
  let stopping = false;
  try {
    await client.connect();
    let reconnecting = false;
    health = new ClientHealth({
      client,
      stuckAfterMs: config.monitorStuckMs,
      // Close and reconnect the same client: every Db handle stays valid, the watcher reopens from its token.
      onStuck: (openForMs) => {
        if (stopping || reconnecting) return;
        reconnecting = true;
        logger.error({ openForMs }, "MongoDB driver monitor is stuck: reconnecting the client");
        client
          .close()
          .then(() => client.connect())
          .catch((err) => logger.warn({ err }, "reconnect after a stuck monitor failed; operations will reconnect on their own"))
          .finally(() => (reconnecting = false));
      },
    });
    const mongo = health;
    const db = client.db(config.mongoDb);
    const hello = await client.db("admin").command({ hello: 1 });
    const scope = cursorScope(String(hello.setName ?? "sharded"), config.mongoDb);

    const hub = new FlowHub({ replay: new ReplayBuffer({ capacity: config.replayBufferSize }) });
    const ids = new FlowIdCache(config.flowIdCacheSize);
    const feed = new ChangeFeed({ rules: filters.byCollection, hub, ids, scope, logger: logger.child({ component: "feed" }) });
    const snapshotOptions = { db, rules: filters.byCollection, scope, logger: logger.child({ component: "snapshot" }), remember: ids.set.bind(ids) };
    watcher = new ChangeWatcher({
      db,
      pipeline: filters.pipeline,
      logger: logger.child({ component: "watcher" }),
      onChange: (change) => feed.handle(change),
      onRestart: (reason, position) => feed.restarted(reason, position),
      maxAwaitTimeMS: config.changeStreamAwaitMs,
    });
    await watcher.start();
    const live = watcher;
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
      retryMs: config.retryMs,
      heartbeatMs: config.heartbeatMs,
      logger: logger.child({ component: "http" }),
      readiness: () => ({
        ready: !stopping && live.ready && mongo.reachable,
        detail: { watcher: live.state, mongo: mongo.reachable ? "reachable" : "unreachable", subscribers: hub.subscriberCount() },
      }),
      metrics,
      auth,
      limits,
      corsOrigins: config.corsOrigins,
      trustProxy: config.trustProxy,
    });
    const httpServer = http.createServer(app.callback());
    server = httpServer;
    metrics.trackServer(httpServer);
    answerClientErrors(httpServer);
    // While stopping, an SSE response ends a moment after closeAll() (its generator returns, then the
    // last chunk is written), and only then is its keep-alive connection idle. Close each one as soon
    // as it is: otherwise server.close() waits out the keep-alive timeout or the whole grace period.
    httpServer.on("request", (_req: http.IncomingMessage, res: http.ServerResponse) =>
      res.once("finish", () => {
        if (stopping) setImmediate(() => httpServer.closeIdleConnections());
      }),
    );
    await new Promise<void>((resolve, reject) => {
      httpServer.once("error", reject);
      httpServer.listen(config.port, config.host, () => resolve());
    });
    const { port } = httpServer.address() as AddressInfo;
    const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`;
    logger.info({ url, subscribe: `${url}${config.basePath}/subscribe/<flowId>`, db: config.mongoDb, collections: filters.collections }, "flowsync listening");

    let stopped: Promise<void> | undefined;
    const stop = () =>
      (stopped ??= (async () => {
        stopping = true;
        const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
        // Ending every stream is what lets server.close() finish: SSE connections are never idle.
        hub.closeAll("shutdown");
        httpServer.closeIdleConnections();
        await Promise.race([closed, sleep(config.shutdownGraceMs)]);
        httpServer.closeAllConnections();
        await closed;
        await live.close();
        mongo.close();
        await client.close();
        await backend.stop();
        logger.info("flowsync stopped");
      })());

    return { url, mongoUrl: backend.url, backend: backend.kind, watcher: live, hub, feed, subscriptions, metrics, health: mongo, limits, stop };
  } catch (err) {
    stopping = true;
    health?.close();
    server?.close();
    await watcher?.close();
    await client.close().catch(squashError);
    await backend.stop();
    throw err;
  }
}
