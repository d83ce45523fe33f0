/**
 * Requests Node's HTTP parser refuses before any Koa code runs (headers over
 * 16 KiB, a malformed request line or header): answered with the same JSON
 * error body as everything else instead of Node's bare status line, then the
 * connection is closed. Nothing else on the server is affected.
 */
import type http from "node:http";
import type { Duplex } from "node:stream";
import { FlowsyncError } from "../errors";

export function answerClientErrors(server: http.Server): void {
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A reset or timed-out connection has nobody to answer.
    if (err.code === "ECONNRESET" || err.code === "ERR_HTTP_REQUEST_TIMEOUT" || !socket.writable) {
      socket.destroy();
      return;
    }
    const error =
      err.code === "HPE_HEADER_OVERFLOW"
        ? new FlowsyncError("E_HEADERS_TOO_LARGE", "the request line and headers must fit in 16 KiB")
        : new FlowsyncError("E_BAD_REQUEST", "malformed HTTP request");
    const body = JSON.stringify(error.toJSON());
    const reason = error.status === 431 ? "Request Header Fields Too Large" : "Bad Request";
    socket.end(
      `HTTP/1.1 ${error.status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
