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
import { randomBytes } from "node:crypto";
import { MongoClient, type Collection } from "mongodb";
import type { Logger } from "pino";
import type { Config } from "./config";
import { cursorScope } from "./events/cursor";
import { FlowsyncError } from "./errors";
import { flowMatchStage, watchPipeline, type CompiledFilters } from "./filters/compile";
import { loadFilters } from "./filters/load";
import { createApp } from "./http/app";
import { authEnabled, createAuthenticator } from "./http/auth";
import { StreamLimits } from "./http/limits";
import { listen } from "./http/server";
import { stopList } from "./lifecycle";
import { ClientHealth, reconnectWhenStuck } from "./mongo/client-health";
import { createMetrics, watcherLagSeconds, type Metrics } from "./metrics";
import { readSnapshot, type SnapshotCounters } from "./snapshot/read-snapshot";
import { ChangeFeed } from "./hub/change-feed";
import { FlowHub } from "./hub/flow-hub";
import { FlowIdCache } from "./hub/flow-id-cache";
import { Limiter } from "./hub/limiter";
import { Presence, PRESENCE_FIELDS, type PresenceDoc, type PresenceStore } from "./hub/presence";
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
  /** Who is on each flow (PRESENCE=on), else undefined. */
  readonly presence: Presence | undefined;
  /** Graceful, idempotent: stop accepting, end every stream, close the watcher, then MongoDB. */
  stop(): Promise<void>;
}

export async function startFlowsync(config: Readonly<Config>, logger: Logger): Promise<Flowsync> {
  const filters = await loadFilters(config.filtersDir);
  // Before MongoDB: a bad key file stops start-up at once.
  const auth = authEnabled(config.auth)
    ? await createAuthenticator({ ...config.auth, publicClaims: config.presence.enabled ? config.presence.claims : [] })
    : undefined;
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
    const snapshotCounters: SnapshotCounters = { elementsSkipped: {} };
    const snapshotOptions = {
      db,
      rules: filters.byCollection,
      scope,
      logger: logger.child({ component: "snapshot" }),
      remember: ids.set.bind(ids),
      counters: snapshotCounters,
    };
    // PRESENCE=off: no presence collection in the stream, no Presence, no write.
    const presenceCollection = config.presence.enabled ? config.presence.collection : undefined;
    if (presenceCollection) checkPresenceAgainstFilters(presenceCollection, filters);
    const presence = presenceCollection
      ? new Presence({
          // Random per start: a restarted instance is a new one, and its predecessor's entries expire.
          instance: randomBytes(8).toString("hex"),
          store: presenceStore(db.collection<PresenceDoc>(presenceCollection)),
          ttlMs: config.presence.ttlMs,
          send: (flowId, frame) => hub.send(flowId, frame, "PRESENCE"),
          audience: (flowId) => hub.subscriberCount(flowId),
          logger: logger.child({ component: "presence" }),
        })
      : undefined;
    const live = new ChangeWatcher({
      db,
      pipeline: presenceCollection ? watchPipeline(filters, [presenceCollection]) : filters.pipeline,
      logger: logger.child({ component: "watcher" }),
      // Presence documents are not document events: no event, no replay, no cursor.
      onChange: presence
        ? (change) => ((change as { ns?: { coll?: string } }).ns?.coll === presenceCollection ? presence.handle(change) : feed.handle(change))
        : (change) => feed.handle(change),
      onRestart: (reason, position) => {
        feed.restarted(reason, position);
        presence?.reload().catch((err: unknown) => logger.warn({ err }, "presence: reload after a stream restart failed"));
      },
      maxAwaitTimeMS: config.changeStreamAwaitMs,
    });
    // Registered before start(): close() also settles a start that is still opening.
    started.push(() => live.close());
    await live.start();
    // From here on every change is pushed: the buffer can answer for cursors at or after this point.
    if (hub.replay.size === 0) hub.replay.reset(live.position?._data);
    // After the stream is open: entries written from here on come through it, older ones from this read.
    await presence?.start();
    // Also here, for a start-up that fails later; stop() is idempotent, the graceful order is below.
    if (presence) started.push(() => presence.stop());

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

    const metrics = createMetrics(
      { hub, feed, subscriptions, watcher: live, catchUps, presence, snapshot: snapshotCounters },
      { eventLoopSampleMs: config.metricsEventLoopMs },
    );
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
      presence,
    });
    const http = await listen(app.callback(), {
      port: config.port,
      host: config.host,
      graceMs: config.shutdownGraceMs,
      prepare: (s) => metrics.trackServer(s),
    });
    // Ending every stream is what lets the server close: SSE connections are never idle.
    started.push(() => http.close(() => hub.closeAll("shutdown")));
    // Before the streams end: the other instances drop this one's users at once, not after the TTL.
    if (presence) started.push(() => presence.stop());
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

    return { url, mongoUrl: backend.url, backend: backend.kind, watcher: live, hub, feed, subscriptions, metrics, health: mongo, limits, presence, stop };
  } catch (err) {
    await stopAll().catch((cleanupErr) => logger.warn({ err: cleanupErr }, "stopping what had started after a failed start-up failed too"));
    throw err;
  }
}

/** The presence collection behind `Presence`: upserts by `_id`, removals, and one read of everything at start. */
function presenceStore(collection: Collection<PresenceDoc>): PresenceStore {
  return {
    put: async (doc) => void (await collection.replaceOne({ _id: doc._id }, doc, { upsert: true })),
    remove: async (ids) => void (await collection.deleteMany({ _id: { $in: [...ids] } })),
    readAll: () => collection.find({}).toArray(),
  };
}

/**
 * The presence collection rides on the filters' change stream, so the filters must leave it alone:
 * it may not be a filtered collection, and no private field may share a name with a field of its
 * documents (the pipeline's `$unset` of private fields applies to every collection of the stream).
 */
function checkPresenceAgainstFilters(collection: string, filters: CompiledFilters): void {
  if (filters.byCollection.has(collection)) {
    throw new FlowsyncError("E_CONFIG_INVALID", `invalid configuration: PRESENCE_COLLECTION: '${collection}' is a filtered collection; choose another name`);
  }
  const clash = filters.privateFields.filter((field) => PRESENCE_FIELDS.has(field.split(".")[0]!));
  if (clash.length > 0) {
    throw new FlowsyncError(
      "E_CONFIG_INVALID",
      `invalid configuration: PRESENCE=on: private field(s) ${clash.join(", ")} would also be removed from presence documents (fields ${[...PRESENCE_FIELDS].join(", ")})`,
    );
  }
}
