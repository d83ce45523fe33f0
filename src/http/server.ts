/**
 * The HTTP server of one flowsync instance: listen, answer parser-level errors
 * as JSON, and a graceful close that ends the SSE streams first.
 *
 * SSE connections are never idle, so `server.close()` alone would wait for every
 * stream: `close(endStreams)` ends them (the hub closes every subscriber), closes
 * what is idle, waits up to `graceMs`, then cuts what is left.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { answerClientErrors } from "./client-errors";

export interface HttpServiceOptions {
  port: number;
  host: string;
  /** How long open responses may take to finish once `close` began, before their sockets are cut. */
  graceMs: number;
  /** Called with the server before it listens (e.g. metrics counting its sockets). */
  prepare?: (server: http.Server) => void;
}

export interface HttpService {
  /** Base URL, e.g. http://127.0.0.1:3000 (IPv6 hosts in brackets). */
  readonly url: string;
  readonly server: http.Server;
  /** Idempotent: stop accepting, `endStreams()`, wait for responses (up to the grace), cut the rest. */
  close(endStreams: () => void): Promise<void>;
}

export async function listen(handler: http.RequestListener, { port, host, graceMs, prepare }: HttpServiceOptions): Promise<HttpService> {
  const server = http.createServer(handler);
  let closing = false;
  answerClientErrors(server);
  // While closing, an SSE response ends a moment after its stream was ended (the last chunk is
  // written), and only then is its keep-alive connection idle. Close each one as soon as it is:
  // otherwise server.close() waits out the keep-alive timeout or the whole grace period.
  // One listener for every response, not a closure and a `once` wrapper each (an SSE response lives as long as its subscriber).
  const closeIdle = () => server.closeIdleConnections();
  const onFinish = () => {
    if (closing) setImmediate(closeIdle);
  };
  server.on("request", (_req: http.IncomingMessage, res: http.ServerResponse) => res.on("finish", onFinish));
  prepare?.(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
  let closed: Promise<void> | undefined;
  return {
    url,
    server,
    close: (endStreams) =>
      (closed ??= (async () => {
        closing = true;
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        endStreams();
        server.closeIdleConnections();
        await Promise.race([done, sleep(graceMs)]);
        server.closeAllConnections();
        await done;
      })()),
  };
}
