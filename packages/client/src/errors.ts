/**
 * The client's one error type. Everything `flowsync/client` raises or reports
 * (through `onError`, `StateInfo.error`, or a throw from `subscribeFlow`) is a
 * `FlowsyncClientError`; only an exception thrown by your own handler reaches
 * `onError` as you threw it.
 *
 * `reason` says what went wrong in words an app can branch on:
 *
 * | reason             | when                                                            | retried? |
 * |--------------------|-----------------------------------------------------------------|----------|
 * | `network`          | no HTTP answer: offline, DNS, refused, or blocked by CORS (a browser does not say which) | yes |
 * | `unauthorized`     | HTTP 401 (`getToken` may return a fresh token next time)        | yes      |
 * | `forbidden`        | HTTP 403                                                        | no       |
 * | `rejected`         | HTTP 400, 404, 405, 410: the request itself is wrong            | no       |
 * | `http`             | any other non-200 answer (429, 5xx, …)                          | yes      |
 * | `protocol`         | an answer that is not an event stream, or EventSource gave up   | yes      |
 * | `invalid-event`    | an event failed its schema (skipped, the stream goes on)        | –        |
 * | `invalid-snapshot` | a snapshot answer failed its schema                              | yes      |
 * | `token`            | `getToken` threw or rejected                                     | yes      |
 * | `usage`            | a wrong argument to `subscribeFlow` (thrown at once)             | –        |
 *
 * `status` is the HTTP status when there was one; `code` the server's error
 * code (`{error: {code, message}}`, e.g. `E_FLOW_ID_INVALID`) when it sent one.
 */
export type ClientErrorReason =
  "network" | "unauthorized" | "forbidden" | "rejected" | "http" | "protocol" | "invalid-event" | "invalid-snapshot" | "token" | "usage";

export class FlowsyncClientError extends Error {
  readonly reason: ClientErrorReason;
  readonly status: number | undefined;
  readonly code: string | undefined;
  constructor(
    message: string,
    { reason, status, code, cause }: { reason: ClientErrorReason; status?: number | undefined; code?: string | undefined; cause?: unknown },
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "FlowsyncClientError";
    this.reason = reason;
    this.status = status;
    this.code = code;
  }
}

/** The reason an HTTP status stands for. */
export function statusReason(status: number): ClientErrorReason {
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 400 || status === 404 || status === 405 || status === 410) return "rejected";
  return "http";
}

/** Errors a retry cannot fix: the subscription closes with them. */
export function isFatal(error: Error): boolean {
  return error instanceof FlowsyncClientError && (error.reason === "forbidden" || error.reason === "rejected" || error.reason === "usage");
}

/** The error a non-200 answer carries (`{error: {code, message}}`), or a generic one. */
export async function responseError(res: Response, what: string): Promise<FlowsyncClientError> {
  const body = (await res.json().catch(() => undefined)) as { error?: { code?: unknown; message?: unknown } } | undefined;
  const code = typeof body?.error?.code === "string" ? body.error.code : undefined;
  const detail = typeof body?.error?.message === "string" ? ` ${code ?? ""} ${body.error.message}`.replace(/ +/g, " ") : "";
  return new FlowsyncClientError(`${what}: HTTP ${res.status}${detail}`, { reason: statusReason(res.status), status: res.status, code });
}

/** Anything thrown, as an Error (for `onError`). */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
