/**
 * The small, coded error vocabulary of flowsync.
 *
 * Every error we raise on purpose is a `FlowsyncError` with a stable `code`.
 * Koa's `ctx.onerror` already honours `status` and `expose`, so HTTP routes can
 * simply throw these; `expose: true` means the message is safe to show a client.
 * The codes are listed in docs/wire.md#error-codes (like fastify's docs/Reference/Errors.md).
 */

export const ERROR_CODES = {
  /** A file in FILTERS_DIR is unreadable, invalid, or contradicts another one. */
  E_FILTER_INVALID: { status: 500, expose: false },
  /** The environment does not describe a usable configuration. */
  E_CONFIG_INVALID: { status: 500, expose: false },
  /** A flowId in a URL is empty, too long, or contains control characters. */
  E_FLOW_ID_INVALID: { status: 400, expose: true },
  /** A request the HTTP layer refused before reaching a route (bad encoding, wrong method, ...). */
  E_BAD_REQUEST: { status: 400, expose: true },
  /** No route matches. */
  E_NOT_FOUND: { status: 404, expose: true },
  /** The request line or headers are too large (Node's HTTP parser limit, 16 KiB by default). */
  E_HEADERS_TOO_LARGE: { status: 431, expose: true },
  /** Auth is on and the request has no valid token (missing, malformed, bad signature, expired, wrong issuer/audience). */
  E_UNAUTHORIZED: { status: 401, expose: true },
  /** The token is valid but does not grant this flow. */
  E_FORBIDDEN: { status: 403, expose: true },
  /** Auth is on and the token lacks the admin claim (AUTH_ADMIN_CLAIM) an admin route needs. */
  E_ADMIN_REQUIRED: { status: 403, expose: true },
  /** A CORS preflight from an origin that is not in CORS_ORIGINS. */
  E_ORIGIN_NOT_ALLOWED: { status: 403, expose: true },
  /** This client IP already has MAX_STREAMS_PER_IP open event streams. */
  E_TOO_MANY_STREAMS: { status: 429, expose: true },
  /** The process already serves MAX_SUBSCRIBERS subscribers. */
  E_SUBSCRIBERS_FULL: { status: 503, expose: true },
  /** The flow already has MAX_SUBSCRIBERS_PER_FLOW subscribers on this process. */
  E_FLOW_FULL: { status: 503, expose: true },
  /** An SSE field would break the wire format (CR, LF or NUL in id/event, bad retry). */
  E_SSE_FIELD_INVALID: { status: 500, expose: false },
  /**
   * MongoDB cannot serve flowsync: unreachable at start-up, a standalone server (no change
   * streams), FLOWSYNC_MONGO=mongod without a mongod, or a reply without what a replica set reports.
   */
  E_MONGO_UNUSABLE: { status: 500, expose: false },
  /** The server ended a change stream's cursor without an invalidate (the watcher reopens; a catch-up fails). */
  E_CHANGE_STREAM_ENDED: { status: 500, expose: false },
  /**
   * A catch-up from inside a change (the cursor of one of its several events) did not find that change at its
   * cluster time: the history it belongs to is gone (rolled back, or another deployment's). The subscriber gets RESET.
   */
  E_CURSOR_CHANGE_MISSING: { status: 500, expose: false },
  /** The component was closed while the operation was under way (a start overtaken by close()). */
  E_CLOSED: { status: 503, expose: false },
  /** An invariant of our own code was broken; a bug, never the client's fault. */
  E_INTERNAL: { status: 500, expose: false },
} as const satisfies Record<string, { status: number; expose: boolean }>;

export type FlowsyncErrorCode = keyof typeof ERROR_CODES;

export interface FlowsyncErrorOptions {
  cause?: unknown;
  /** Overrides the code's default HTTP status. */
  status?: number;
  /** Overrides the code's default; true = the message may be sent to the client. */
  expose?: boolean;
  /** Extra response headers (`Retry-After`, `WWW-Authenticate`), set by the HTTP error handler. */
  headers?: Record<string, string>;
}

export class FlowsyncError extends Error {
  // Set explicitly: minifiers and subclassing would otherwise make `name` unreliable in logs.
  override readonly name = "FlowsyncError";
  readonly code: FlowsyncErrorCode;
  readonly status: number;
  readonly expose: boolean;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: FlowsyncErrorCode, message: string, options: FlowsyncErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? ERROR_CODES[code].status;
    this.expose = options.expose ?? ERROR_CODES[code].expose;
    this.headers = options.headers ?? {};
  }

  /** The JSON error body for HTTP answers; hides the message unless it is exposable. */
  toJSON(): { error: { code: FlowsyncErrorCode; message: string } } {
    return { error: { code: this.code, message: this.expose ? this.message : "internal error" } };
  }
}

export function isFlowsyncError(err: unknown, code?: FlowsyncErrorCode): err is FlowsyncError {
  return err instanceof FlowsyncError && (code === undefined || err.code === code);
}

/**
 * Marks an error we swallow on purpose (cleanup paths: closing an already-broken
 * cursor, writing to a socket that just went away). Named so that a reader sees
 * the decision, after the mongodb driver's `squashError`.
 */
export function squashError(_err: unknown): void {
  return;
}

/** Why a change stream had to start again from somewhere other than right after its last change. */
export type RestartReason = "history-lost" | "stream-invalidated" | "cursor-unknown";

/**
 * Server errors after which resuming from a token is pointless: 286
 * ChangeStreamHistoryLost (the token fell off the oplog) and 280
 * ChangeStreamFatalError (the token is unknown to this deployment); see
 * docs/mongodb.md#change-stream-error-codes.
 */
const HISTORY_LOST = 286;
const TOKEN_NOT_FOUND = 280;

/**
 * Why a stream cannot go on from its position (history lost, token unknown), or
 * undefined for any other error. Shared by the watcher and the catch-up streams.
 */
export function restartReason(err: unknown): RestartReason | undefined {
  const code = (err as { code?: number }).code;
  if (isFlowsyncError(err) && err.code === "E_CURSOR_CHANGE_MISSING") return "cursor-unknown";
  return code === HISTORY_LOST ? "history-lost" : code === TOKEN_NOT_FOUND ? "cursor-unknown" : undefined;
}
