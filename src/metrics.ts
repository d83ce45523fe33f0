/**
 * `GET /metrics`: Prometheus text format via prom-client, one Registry per
 * instance (several instances may share a process, e.g. in tests).
 *
 * Nothing here runs per event. Every metric is read at scrape time, in a
 * `collect()` callback, from counters the parts keep anyway (FlowHub, ChangeFeed,
 * Subscriptions, ChangeWatcher, Limiter) or from the sockets themselves
 * (`bytesWritten`). Labels are bounded sets (event type, skip reason, replay
 * source): never a flowId, whose cardinality has no bound.
 */
import type http from "node:http";
import type { Socket } from "node:net";
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { ChangeFeed } from "./hub/change-feed";
import type { FlowHub } from "./hub/flow-hub";
import type { Limiter } from "./hub/limiter";
import type { Presence } from "./hub/presence";
import type { Subscriptions } from "./hub/subscriptions";
import { clusterTimeOfToken, type ResumeToken } from "./token";
import type { SnapshotCounters } from "./snapshot/read-snapshot";
import type { ChangeWatcher } from "./watch/change-watcher";

export interface MetricSources {
  hub: FlowHub;
  feed: ChangeFeed;
  subscriptions: Subscriptions;
  watcher: Pick<ChangeWatcher, "position" | "restarts">;
  catchUps: Pick<Limiter, "active" | "queued">;
  /** PRESENCE=on only. */
  presence?: Pick<Presence, "counters" | "usersPresent">;
  /** What snapshot reads left out. */
  snapshot?: SnapshotCounters;
  /** Wall clock in ms (test seam). */
  now?: () => number;
}

export interface Metrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** The exposition text. */
  text(): Promise<string>;
  /** Counts the bytes written on every connection of `server` (SSE streams dominate). */
  trackServer(server: http.Server): void;
}

export interface MetricsOptions {
  /** prom-client's default process metrics (`process_*`, `nodejs_*`). */
  processMetrics?: boolean;
  /**
   * How often the event-loop delay histogram (`nodejs_eventloop_lag_*`) takes a sample. Every sample wakes the
   * process: at prom-client's 10 ms that is 100 wake-ups a second, most of an idle instance's CPU.
   */
  eventLoopSampleMs?: number;
}

export function createMetrics(s: MetricSources, { processMetrics = true, eventLoopSampleMs = 100 }: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const now = s.now ?? Date.now;

  /** A counter whose value is read from elsewhere at scrape time. */
  const counterFrom = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: (set: (value: number, labels?: Partial<Record<L, string>>) => void) => void,
  ) =>
    new Counter<L>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        read((value, labels) => (labels ? this.inc(labels, value) : this.inc(value)));
      },
    });
  const gaugeFrom = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });

  gaugeFrom("flowsync_subscribers", "Connected SSE subscribers.", () => s.hub.subscriberCount());
  gaugeFrom("flowsync_flows_subscribed", "Flows with at least one subscriber.", () => s.hub.stats.flows);
  counterFrom("flowsync_changes_received_total", "Change events read from the MongoDB change stream.", [], (set) => set(s.feed.counters.received));
  counterFrom("flowsync_events_published_total", "Changes turned into events (serialized once each), by event type.", ["type"], (set) => {
    for (const [type, c] of s.hub.typeCounts()) if (type !== "RESET" && type !== "PRESENCE") set(c.published, { type });
  });
  counterFrom(
    "flowsync_events_delivered_total",
    "Live frames handed to subscriber queues, by event type (RESET: broadcast after a stream restart; PRESENCE: presence lists).",
    ["type"],
    (set) => {
      for (const [type, c] of s.hub.typeCounts()) set(c.delivered, { type });
    },
  );
  counterFrom("flowsync_changes_skipped_total", "Changes that became no event (logged), by reason.", ["reason"], (set) => {
    for (const [reason, n] of Object.entries(s.feed.counters.skipped)) set(n ?? 0, { reason });
  });
  counterFrom(
    "flowsync_snapshot_elements_skipped_total",
    "Elements of an embedded-entity document left out of a snapshot (the same rules as for events), by reason.",
    ["reason"],
    (set) => {
      for (const [reason, n] of Object.entries(s.snapshot?.elementsSkipped ?? {})) set(n ?? 0, { reason });
    },
  );
  counterFrom(
    "flowsync_elements_skipped_total",
    "Elements of an embedded-entity document left out of an event (no valid key, duplicate key, not an object), by reason.",
    ["reason"],
    (set) => {
      for (const [reason, n] of Object.entries(s.feed.counters.elementsSkipped)) set(n ?? 0, { reason });
    },
  );
  counterFrom(
    "flowsync_element_derivations_total",
    "How the events of an embedded-entity kind were derived from a change (docs/filters.md), by case.",
    ["case"],
    (set) => {
      for (const [how, n] of Object.entries(s.feed.counters.derivations)) set(n ?? 0, { case: how });
    },
  );
  counterFrom("flowsync_replays_total", "Resumes with a backlog, by where it was served from.", ["source"], (set) => {
    set(s.subscriptions.counters.replayedFromMemory, { source: "memory" });
    set(s.subscriptions.counters.replayedFromMongo, { source: "mongodb" });
  });
  counterFrom(
    "flowsync_resets_sent_total",
    "RESET events sent: to one subscriber for its cursor, or to every subscriber after a stream restart.",
    ["cause"],
    (set) => {
      set(s.subscriptions.counters.resets, { cause: "cursor" });
      set(s.hub.typeCounts().get("RESET")?.delivered ?? 0, { cause: "stream-restart" });
    },
  );
  counterFrom("flowsync_slow_clients_dropped_total", "Subscribers disconnected because their unsent bytes exceeded CLIENT_BUFFER_BYTES.", [], (set) =>
    set(s.hub.stats.dropped),
  );
  counterFrom("flowsync_subscriptions_opened_total", "Subscribe requests accepted.", [], (set) => set(s.subscriptions.counters.opened));
  gaugeFrom("flowsync_catchup_streams_open", "Catch-up change streams running now.", () => s.catchUps.active);
  gaugeFrom("flowsync_catchup_streams_waiting", "Subscribers waiting for a catch-up slot (CATCHUP_CONCURRENCY).", () => s.catchUps.queued);
  gaugeFrom("flowsync_replay_buffer_events", "Events held in the replay buffer.", () => s.hub.replay.size);
  gaugeFrom(
    "flowsync_watcher_lag_seconds",
    "Now minus the cluster time of the watcher's position: its last event, or the high-water mark of its last empty batch (so an idle stream stays near 0). NaN before the first position.",
    () => {
      return watcherLagSeconds(s.watcher.position, now()) ?? Number.NaN;
    },
  );
  counterFrom(
    "flowsync_change_stream_restarts_total",
    "Times the change stream restarted elsewhere than after its last event (history lost, invalidate, unknown token).",
    [],
    (set) => set(s.watcher.restarts),
  );

  const { presence } = s;
  if (presence) {
    counterFrom(
      "flowsync_presence_writes_total",
      "Presence documents this instance wrote or removed (at most one per flow per second; rate() gives writes per second).",
      [],
      (set) => set(presence.counters.writes),
    );
    counterFrom("flowsync_presence_write_errors_total", "Presence writes that failed (MongoDB unreachable: retried).", [], (set) =>
      set(presence.counters.writeErrors),
    );
    counterFrom(
      "flowsync_presence_invalid_total",
      "Changes of the presence collection skipped because they were not presence documents (another writer's, or malformed).",
      [],
      (set) => set(presence.counters.invalid),
    );
    counterFrom(
      "flowsync_presence_expired_total",
      "Other instances' presence entries dropped because they were not refreshed within PRESENCE_TTL_MS.",
      [],
      (set) => set(presence.counters.expired),
    );
    new Gauge({
      name: "flowsync_presence_users",
      help: "Users on presence lists: of this instance's connections (instance), or of every flow this instance knows, all instances merged (all).",
      labelNames: ["scope"],
      registers,
      collect() {
        const { local, all } = presence.usersPresent();
        this.set({ scope: "instance" }, local);
        this.set({ scope: "all" }, all);
      },
    });
  }

  let closedBytes = 0;
  const open = new Set<Socket>();
  counterFrom("flowsync_bytes_written_total", "Bytes written to HTTP clients (headers included; SSE streams dominate).", [], (set) => {
    let total = closedBytes;
    for (const socket of open) total += socket.bytesWritten;
    set(total);
  });

  if (processMetrics) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: eventLoopSampleMs });

  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    trackServer(server) {
      // One listener for every socket (`this` is the socket), not a closure and a `once` wrapper per connection.
      function onClose(this: Socket): void {
        if (!open.delete(this)) return;
        closedBytes += this.bytesWritten;
      }
      server.on("connection", (socket: Socket) => {
        open.add(socket);
        socket.on("close", onClose);
      });
    },
  };
}

/** The cluster time's seconds in a token (src/token.ts: the same property the replay buffer's token order relies on). */
export function clusterSecondsOfToken(data: string | undefined): number | undefined {
  return clusterTimeOfToken(data)?.t;
}

/** Now minus the cluster time of the watcher's position (seconds, ≥ 0); undefined before the first position. */
export function watcherLagSeconds(position: ResumeToken | undefined, now: number): number | undefined {
  const seconds = clusterSecondsOfToken(position?._data);
  return seconds === undefined ? undefined : Math.max(0, now / 1000 - seconds);
}
