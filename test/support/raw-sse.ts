/**
 * An SSE request on a bare TCP socket that does not read its response until
 * told to: the slow (or stalled) client that fetch() cannot imitate, since
 * fetch keeps reading into memory whatever the caller does.
 */
import net from "node:net";

export class StalledSseClient {
  readonly socket: net.Socket;
  /** What was read once `read()` was called. */
  text = "";
  closed = false;
  readonly #connected: Promise<void>;

  constructor(url: string, headers: Record<string, string> = {}) {
    const u = new URL(url);
    this.socket = net.connect({ host: u.hostname, port: Number(u.port) });
    // Never started: node reads at most one highWaterMark ahead, the kernel buffers the rest, then TCP pushes back.
    this.socket.pause();
    this.socket.on("error", () => {});
    this.socket.on("close", () => (this.closed = true));
    const lines = [
      `GET ${u.pathname}${u.search} HTTP/1.1`,
      `Host: ${u.host}`,
      "Accept: text/event-stream",
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    this.#connected = new Promise((resolve, reject) => {
      this.socket.once("connect", () => this.socket.write(`${lines.join("\r\n")}\r\n\r\n`, () => resolve()));
      this.socket.once("error", reject);
    });
  }

  /** Resolves once the request has been sent. */
  sent(): Promise<void> {
    return this.#connected;
  }

  /** Starts reading (everything buffered so far, then whatever comes). */
  read(): void {
    this.socket.setEncoding("utf8");
    this.socket.on("data", (chunk: string) => (this.text += chunk));
    this.socket.resume();
  }

  /** True once the chunked response body has ended (the server ended the stream). */
  get responseEnded(): boolean {
    return this.text.includes("\r\n0\r\n\r\n");
  }

  destroy(): void {
    this.socket.destroy();
  }
}
