/**
 * The simulator's TCP server: a one-member replica set `rs0` speaking the
 * MongoDB wire protocol, for offline development and tests. Never production.
 *
 * Each connection handles its messages one at a time, in order, as the driver
 * expects (it never pipelines on a pooled connection).
 */
import net from "node:net";
import type { Document } from "bson";
import type { Logger } from "pino";
import { CLOSE_CONNECTION, runCommand } from "./commands";
import type { Connection, Ctx, ServerState } from "./context";
import { Cursors } from "./cursors";
import { FailPoints } from "./fail-points";
import { Oplog } from "./oplog";
import { SessionCache } from "./session-cache";
import { Store } from "./store";
import { Sessions } from "./transactions";
import { encodeOpMsg, encodeOpReply, messageLength, OP_QUERY, parseMessage } from "./wire";

export interface SimulatorOptions {
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** How many oplog entries are kept before the oldest are dropped (history lost). */
  oplogSize?: number;
  /** Replica set name; `false` runs a standalone server (no change streams), for testing that path. */
  replicaSet?: string | false;
  /**
   * A replica-set primary writes a no-op to its oplog when nothing else was written for this
   * long (mongod's periodicNoopIntervalSecs, 10 s), so cluster time and the resume tokens of
   * idle change streams keep moving. 0 turns it off.
   */
  noopIntervalMs?: number;
  logger?: Logger;
}

export interface Simulator {
  readonly host: string;
  readonly port: number;
  /** Connection string the driver must use: the host must equal the one in `hosts`. */
  readonly url: string;
  /** Open client connections (for tests that check nothing leaks). */
  readonly connections: number;
  /** Resets every client connection at once (TCP RST), like a network fault; the server keeps listening. */
  dropConnections(): void;
  close(): Promise<void>;
}

export const DEFAULT_OPLOG_SIZE = 100_000;
export const DEFAULT_NOOP_INTERVAL_MS = 10_000;

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const host = options.host ?? "127.0.0.1";
  const setName = options.replicaSet === false ? undefined : (options.replicaSet ?? "rs0");
  const log = options.logger;
  const oplog = new Oplog(options.oplogSize ?? DEFAULT_OPLOG_SIZE);
  const sockets = new Set<net.Socket>();
  let nextConnectionId = 1;
  const store = new Store(oplog);
  const state: ServerState = {
    oplog,
    store,
    sessions: new Sessions(store, oplog),
    cursors: new Cursors(),
    failPoints: new FailPoints(),
    me: "", // known once listening
    setName,
    startedAt: new Date(),
    connections: new Set(),
    nextOpId: 1,
    sessionCache: new SessionCache(),
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const closed = new AbortController();
    const conn: Connection = { id: nextConnectionId++, client: `${socket.remoteAddress}:${socket.remotePort}`, closed: closed.signal };
    state.connections.add(conn);
    const ctx: Ctx = { server: state, conn, data: state.store };
    let pending = Buffer.alloc(0);
    let queue = Promise.resolve();

    socket.on("data", (chunk) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      try {
        for (let len = messageLength(pending); len > 0; len = messageLength(pending)) {
          const message = pending.subarray(0, len);
          pending = pending.subarray(len);
          queue = queue.then(() => handle(message));
        }
      } catch (err) {
        log?.warn({ err }, "simulator: malformed message, closing connection");
        socket.destroy();
      }
    });
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      sockets.delete(socket);
      state.connections.delete(conn);
      closed.abort();
    });

    async function handle(message: Buffer): Promise<void> {
      if (socket.destroyed) return;
      let request;
      try {
        request = parseMessage(message);
      } catch (err) {
        log?.warn({ err }, "simulator: unreadable message, closing connection");
        socket.destroy();
        return;
      }
      const db = request.opCode === OP_QUERY ? ((request.fullCollectionName ?? "admin").split(".")[0] ?? "admin") : ((request.body.$db as string) ?? "admin");
      rememberClient(conn, request.body);
      conn.op = { opid: state.nextOpId++, command: request.body, db, startedAt: Date.now() };
      const reply = await runCommand(request.body, db, ctx).finally(() => (conn.op = undefined));
      if (reply === CLOSE_CONNECTION) {
        socket.destroy();
        return;
      }
      if (request.moreToCome || socket.destroyed) return;
      socket.write(request.opCode === OP_QUERY ? encodeOpReply(request.requestId, reply) : encodeOpMsg(request.requestId, reply));
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  state.me = `${host}:${port}`;
  const url = setName ? `mongodb://${state.me}/?replicaSet=${setName}` : `mongodb://${state.me}/?directConnection=true`;
  log?.debug({ url }, "simulator listening");

  const noopInterval = options.noopIntervalMs ?? DEFAULT_NOOP_INTERVAL_MS;
  const noopWriter =
    setName !== undefined && noopInterval > 0
      ? setInterval(() => {
          if (Date.now() - oplog.lastAppendAt >= noopInterval) state.store.noop();
        }, noopInterval).unref()
      : undefined;

  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    url,
    get connections() {
      return sockets.size;
    },
    dropConnections() {
      // RST, not FIN: the client sees ECONNRESET at once on every socket. After a FIN the
      // driver does not notice that its idle monitor socket is gone, and its next heartbeat
      // hangs for connectTimeoutMS (30 s) before the topology recovers; a knob meant to test
      // recovery should not depend on that timeout.
      for (const s of sockets) s.resetAndDestroy();
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(noopWriter);
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        state.cursors.clear();
        oplog.wakeAll();
      });
      return closing;
    },
  };
}

/** The handshake describes the client and names the application (failCommand's `appName` filter, $currentOp). */
function rememberClient(conn: Connection, body: Document): void {
  if (!body.client || typeof body.client !== "object") return;
  conn.clientMetadata = body.client;
  const name = body.client.application?.name;
  if (typeof name === "string") conn.appName = name;
}
