/**
 * Whether the MongoClient can reach a server now, and a guard against a driver
 * monitor that has wedged.
 *
 * Reachable = the driver's topology knows a server that takes reads and writes
 * (an RS primary, a mongos, a standalone, a load balancer). It turns false as
 * soon as the driver marks the server unknown (a network error on any
 * connection, a failed heartbeat), which is what `/readyz` needs: the watcher's
 * own state stays "running" while the driver quietly waits to resume.
 *
 * The wedge: with the driver (v7) on a direct connection, when every connection
 * to the server closes at once (a mongod restart, a proxy or network reset), the
 * monitor can start a heartbeat on its half-closed connection and wait for the
 * answer forever; the server then stays "unknown", server selection times out
 * again and again, and the change stream never comes back — even after MongoDB
 * does. A heartbeat normally ends within connectTimeoutMS (+ heartbeatFrequencyMS
 * when streaming), success or failure; one that is still open well after that is
 * a wedge, and `onStuck` is called (flowsync closes and reconnects the client;
 * the watcher then reopens from its token).
 */
import type { MongoClient, ServerDescription, TopologyDescription } from "mongodb";
import type { Logger } from "pino";

export interface ClientHealthOptions {
  client: MongoClient;
  /** A heartbeat still open after this long is a wedge. Default connectTimeoutMS + heartbeatFrequencyMS + 5 s. */
  stuckAfterMs?: number;
  /** How often the heartbeats are checked. Default 1 s. */
  checkEveryMs?: number;
  onStuck: (openForMs: number) => void;
}

const USABLE = new Set(["RSPrimary", "Mongos", "Standalone", "LoadBalancer"]);

export class ClientHealth {
  readonly stuckAfterMs: number;
  #reachable: boolean;
  /** Heartbeats started and not yet finished, by server address. */
  readonly #open = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  readonly #detach: () => void;
  #wedges = 0;

  constructor({ client, stuckAfterMs, checkEveryMs = 1000, onStuck }: ClientHealthOptions) {
    const options = client.options as { connectTimeoutMS?: number; heartbeatFrequencyMS?: number };
    this.stuckAfterMs = stuckAfterMs ?? (options.connectTimeoutMS || 30_000) + (options.heartbeatFrequencyMS ?? 10_000) + 5000;
    this.#reachable = usable((client as unknown as { topology?: { description: TopologyDescription } }).topology?.description);
    const onTopology = (e: { newDescription: TopologyDescription }) => (this.#reachable = usable(e.newDescription));
    const onStarted = (e: { connectionId: string }) => void this.#open.set(e.connectionId, Date.now());
    const onEnded = (e: { connectionId: string }) => void this.#open.delete(e.connectionId);
    client.on("topologyDescriptionChanged", onTopology);
    client.on("serverHeartbeatStarted", onStarted);
    client.on("serverHeartbeatSucceeded", onEnded);
    client.on("serverHeartbeatFailed", onEnded);
    // A closed topology ends its monitors without a last event: forget their heartbeats.
    const onClosed = () => this.#open.clear();
    client.on("topologyClosed", onClosed);
    this.#detach = () => {
      client.off("topologyDescriptionChanged", onTopology);
      client.off("serverHeartbeatStarted", onStarted);
      client.off("serverHeartbeatSucceeded", onEnded);
      client.off("serverHeartbeatFailed", onEnded);
      client.off("topologyClosed", onClosed);
    };
    this.#timer = setInterval(() => {
      const now = Date.now();
      let oldest = now;
      for (const started of this.#open.values()) oldest = Math.min(oldest, started);
      if (now - oldest > this.stuckAfterMs) {
        this.#open.clear();
        this.#wedges++;
        onStuck(now - oldest);
      }
    }, checkEveryMs);
    this.#timer.unref();
  }

  /** Whether a server that takes reads and writes is known now. */
  get reachable(): boolean {
    return this.#reachable;
  }

  /** How many wedges were detected (and handed to onStuck). */
  get wedges(): number {
    return this.#wedges;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#detach();
  }
}

/**
 * flowsync's answer to a wedge: close and reconnect the same client. Every Db
 * handle stays valid, and the watcher reopens from its token. One reconnect at a
 * time; the health guard is closed before the client on shutdown, so none starts then.
 */
export function reconnectWhenStuck(client: MongoClient, logger: Logger): (openForMs: number) => void {
  let reconnecting = false;
  return (openForMs) => {
    if (reconnecting) return;
    reconnecting = true;
    logger.error({ openForMs }, "MongoDB driver monitor is stuck: reconnecting the client");
    client
      .close()
      .then(() => client.connect())
      .catch((err) => logger.warn({ err }, "reconnect after a stuck monitor failed; operations will reconnect on their own"))
      .finally(() => (reconnecting = false));
  };
}

function usable(description: TopologyDescription | undefined): boolean {
  if (!description) return false;
  for (const server of description.servers.values() as Iterable<ServerDescription>) if (USABLE.has(server.type)) return true;
  return false;
}
