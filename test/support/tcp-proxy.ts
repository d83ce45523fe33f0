/**
 * A TCP proxy in front of MongoDB that a test can cut and restore, to put
 * flowsync (and only flowsync) out of reach of a database that keeps running
 * and keeps taking other clients' writes: the faithful outage. Restarting the
 * simulator instead would lose its oplog, which no real outage does.
 *
 *   refuse     new connections are refused (the listener closes) and open ones are reset:
 *              mongod down or its port closed
 *   blackhole  new connections are accepted but nothing is forwarded, and open ones are
 *              reset: a partition that drops packets (the client only sees timeouts)
 *   drop()     every open connection is reset once; new ones go through: a network blip,
 *              a connection closed mid-batch
 *
 * Clients must reach the server through the proxy only: use `url` (a direct
 * connection, since a replica-set URL would make the driver follow the server's
 * own `hosts` list around the proxy).
 */
import net from "node:net";

export type CutMode = "refuse" | "blackhole";

export class TcpProxy {
  readonly #target: { host: string; port: number };
  #server: net.Server | undefined;
  #port = 0;
  #mode: "open" | CutMode = "open";
  readonly #pairs = new Set<net.Socket>();
  /** Connections accepted (through the listener, whatever the mode). */
  accepted = 0;
  /** Connections reset by drop() or a cut. */
  resets = 0;

  private constructor(target: { host: string; port: number }) {
    this.#target = target;
  }

  /** Starts a proxy on a free port of 127.0.0.1 in front of `target` (`host:port`). */
  static async start(target: string): Promise<TcpProxy> {
    const [host, port] = target.split(":") as [string, string];
    const proxy = new TcpProxy({ host, port: Number(port) });
    await proxy.#listen(0);
    return proxy;
  }

  get port(): number {
    return this.#port;
  }

  get mode(): "open" | CutMode {
    return this.#mode;
  }

  /** A driver URL through the proxy (direct connection: see the module comment). */
  url(query = ""): string {
    return `mongodb://127.0.0.1:${this.#port}/?directConnection=true${query ? `&${query}` : ""}`;
  }

  /** Resets every open connection (both sides); new connections still go through. */
  drop(): void {
    for (const socket of this.#pairs) {
      socket.destroy();
      this.resets++;
    }
    this.#pairs.clear();
  }

  /** Cuts the way through: see the module comment for the modes. */
  async cut(mode: CutMode): Promise<void> {
    this.#mode = mode;
    this.drop();
    if (mode === "refuse") await this.#close();
  }

  /** Lets connections through again, on the same port. */
  async restore(): Promise<void> {
    if (this.#mode === "refuse") await this.#listen(this.#port);
    this.#mode = "open";
  }

  async close(): Promise<void> {
    this.drop();
    await this.#close();
  }

  #listen(port: number): Promise<void> {
    const server = net.createServer((client) => this.#accept(client));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        this.#port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  #close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  #accept(client: net.Socket): void {
    this.accepted++;
    client.on("error", () => {});
    this.#pairs.add(client);
    client.once("close", () => this.#pairs.delete(client));
    if (this.#mode !== "open") {
      // Blackhole: hold the connection and read nothing into anywhere.
      client.pause();
      return;
    }
    const upstream = net.connect(this.#target);
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
    this.#pairs.add(upstream);
    upstream.once("close", () => {
      this.#pairs.delete(upstream);
      client.destroy();
    });
    client.once("close", () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
