/**
 * The connection state machine of `subscribeFlow`, as data: a pure
 * `transition(machine, event) → { machine, effects }` over a typed table of
 * phase × event. It does no I/O and keeps no timers; the driver
 * (subscribe.ts) performs the effects and feeds back what happened as events.
 *
 *   idle ─start─▶ snapshot ─fetched─▶ connecting ─opened─▶ open ─ended─▶ waiting ─timer─▶ connecting
 *     │              │  ▲                 ▲                 │  ▲                 │
 *     │         failed  └──timer── waiting │            interrupted  opened       │
 *     └─start (cursor known)──────────────┘                 ▼  │                 │
 *                                                       interrupted               │
 *   open ─reset─▶ snapshot (needsSnapshot: no resume before a snapshot is applied) ◀─┘
 *   any ─close─▶ closed          any ─fatal error─▶ closed (with the error)
 *
 * Invariant the driver relies on: at most one thing is in flight (a stream, a
 * snapshot fetch, or a timer). Every effect that starts one stops the previous;
 * callbacks of a stopped one are ignored by the driver.
 *
 * The phase is the machine's own; `status` is what the app sees (`ConnectionState`),
 * reported through a `state` effect whenever it changes or comes with an error.
 */
import { isFatal } from "./errors.js";

/**
 * What the app sees:
 * - `connecting`: first snapshot or first connection under way
 * - `open`: the stream is open (events flow)
 * - `reconnecting`: the connection dropped; resuming with the last cursor
 * - `resyncing`: a RESET came; refetching the snapshot
 * - `closed`: `close()` was called, or a fatal error (see `StateInfo.error`)
 */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "resyncing" | "closed";

export type SnapshotReason = "initial" | "reset";

export type Phase =
  | { readonly kind: "idle" }
  /** A snapshot fetch is in flight. */
  | { readonly kind: "snapshot"; readonly reason: SnapshotReason }
  /** A stream was requested and has not opened yet. */
  | { readonly kind: "connecting" }
  | { readonly kind: "open" }
  /** The transport reconnects by itself (EventSource after a drop). */
  | { readonly kind: "interrupted" }
  /** A timer runs; when it fires, `then` happens. */
  | { readonly kind: "waiting"; readonly then: "connect" | SnapshotReason }
  | { readonly kind: "closed" };
export type PhaseKind = Phase["kind"];

export interface Machine {
  readonly phase: Phase;
  readonly status: ConnectionState;
  /** The cursor to resume from. */
  readonly lastEventId: string | undefined;
  /** A RESET came and no snapshot has been applied since: never resume before one is. */
  readonly needsSnapshot: boolean;
  /** Failed attempts since the last success (the backoff's exponent). */
  readonly attempt: number;
  /** The first retry's delay: the server's `retry:` hint, or the configured initial delay. */
  readonly retryMs: number;
  /** Streams opened so far (by the client or by EventSource itself). */
  readonly opens: number;
}

export type ConnectionEvent =
  /** `fetchSnapshot`: get a snapshot first; otherwise subscribe from `lastEventId` at once. */
  | { readonly type: "start"; readonly fetchSnapshot: boolean }
  /** The snapshot fetch succeeded and the driver applied it. */
  | { readonly type: "fetched"; readonly cursor: string }
  | { readonly type: "fetchFailed"; readonly error: Error }
  /** A snapshot from elsewhere (given at start, or a SNAPSHOT event) was applied. */
  | { readonly type: "snapshot"; readonly cursor: string }
  | { readonly type: "opened" }
  /** A message carried an id. */
  | { readonly type: "cursor"; readonly id: string }
  | { readonly type: "reset" }
  | { readonly type: "retryHint"; readonly ms: number }
  | { readonly type: "interrupted" }
  /** The stream ended (cleanly when `error` is undefined). */
  | { readonly type: "ended"; readonly error: Error | undefined }
  | { readonly type: "timer" }
  | { readonly type: "reconnect"; readonly delayMs: number }
  | { readonly type: "close" };
export type ConnectionEventType = ConnectionEvent["type"];

export type Effect =
  | { readonly type: "fetchSnapshot"; readonly reason: SnapshotReason }
  | { readonly type: "openStream"; readonly from: string | undefined }
  /** Wait `delayMs`, or a backoff delay for `attempt` starting from `initialMs`; then feed `timer`. */
  | { readonly type: "wait"; readonly delayMs: number }
  | { readonly type: "backoff"; readonly attempt: number; readonly initialMs: number }
  /** Stop whatever is in flight. */
  | { readonly type: "stop" }
  | { readonly type: "state"; readonly state: ConnectionState; readonly error: Error | undefined }
  | { readonly type: "report"; readonly error: Error };

export interface Step {
  readonly machine: Machine;
  readonly effects: readonly Effect[];
}

export function initialMachine(lastEventId: string | undefined, retryMs: number): Machine {
  return { phase: { kind: "idle" }, status: "connecting", lastEventId, needsSnapshot: false, attempt: 0, retryMs, opens: 0 };
}

// A handler returns the next machine and pushes its effects onto `fx` (a fresh array per transition).
type Handler<T extends ConnectionEventType> = (m: Machine, e: Extract<ConnectionEvent, { type: T }>, fx: Effect[]) => Machine;
type Row = { readonly [T in ConnectionEventType]?: Handler<T> };

/** Moves the public status, with a `state` effect when it changes or an error explains it. */
function status(m: Machine, fx: Effect[], next: ConnectionState, error?: Error): Machine {
  if (next === m.status && error === undefined) return m;
  fx.push({ type: "state", state: next, error });
  return { ...m, status: next };
}

function resync(m: Machine, fx: Effect[], reason: SnapshotReason): Machine {
  const next = status({ ...m, phase: { kind: "snapshot", reason }, needsSnapshot: true }, fx, reason === "initial" ? "connecting" : "resyncing");
  fx.push({ type: "fetchSnapshot", reason });
  return next;
}

function connect(m: Machine, fx: Effect[]): Machine {
  if (m.needsSnapshot) return resync(m, fx, "reset");
  fx.push({ type: "openStream", from: m.lastEventId });
  return { ...m, phase: { kind: "connecting" } };
}

function fail(m: Machine, fx: Effect[], error: Error): Machine {
  fx.push({ type: "stop" });
  const next = status({ ...m, phase: { kind: "closed" } }, fx, "closed", error);
  fx.push({ type: "report", error });
  return next;
}

function backoff(m: Machine, fx: Effect[], then: "connect" | SnapshotReason): Machine {
  fx.push({ type: "backoff", attempt: m.attempt, initialMs: m.retryMs });
  return { ...m, phase: { kind: "waiting", then }, attempt: m.attempt + 1 };
}

// Handled the same in every phase but `closed`.
const always: Row = {
  close: (m, _e, fx) => {
    fx.push({ type: "stop" });
    return status({ ...m, phase: { kind: "closed" } }, fx, "closed");
  },
  reconnect: (m, e, fx) => {
    const next = status({ ...m, phase: { kind: "waiting", then: "connect" } }, fx, "reconnecting");
    fx.push({ type: "wait", delayMs: e.delayMs });
    return next;
  },
  snapshot: (m, e) => ({ ...m, lastEventId: e.cursor, needsSnapshot: false }),
  retryHint: (m, e) => ({ ...m, retryMs: e.ms }),
};

// What a live transport reports, in any of its phases.
const streaming: Row = {
  ...always,
  cursor: (m, e) => ({ ...m, lastEventId: e.id }),
  reset: (m, _e, fx) => resync(m, fx, "reset"),
  opened: (m, _e, fx) => status({ ...m, phase: { kind: "open" }, attempt: 0, opens: m.opens + 1 }, fx, "open"),
  interrupted: (m, _e, fx) => status({ ...m, phase: { kind: "interrupted" } }, fx, "reconnecting"),
  ended: (m, e, fx) => (e.error && isFatal(e.error) ? fail(m, fx, e.error) : backoff(status(m, fx, "reconnecting", e.error), fx, "connect")),
};

/** The table: which events each phase handles. Anything else leaves the machine as it is. */
export const TABLE: { readonly [P in PhaseKind]: Row } = {
  idle: {
    ...always,
    start: (m, e, fx) => (e.fetchSnapshot ? resync(m, fx, "initial") : connect(m, fx)),
  },
  snapshot: {
    ...always,
    fetched: (m, e, fx) => connect({ ...m, lastEventId: e.cursor, needsSnapshot: false, attempt: 0 }, fx),
    fetchFailed: (m, e, fx) => {
      if (isFatal(e.error)) return fail(m, fx, e.error);
      // The status stays (connecting / resyncing) but now says why it is retrying.
      const next = status(m, fx, m.status, e.error);
      fx.push({ type: "report", error: e.error });
      return backoff(next, fx, m.phase.kind === "snapshot" ? m.phase.reason : "reset");
    },
  },
  connecting: streaming,
  open: streaming,
  interrupted: streaming,
  waiting: {
    ...always,
    timer: (m, _e, fx) => (m.phase.kind === "waiting" && m.phase.then !== "connect" ? resync(m, fx, m.phase.then) : connect(m, fx)),
  },
  closed: {},
};

export function transition(m: Machine, e: ConnectionEvent): Step {
  const handler = TABLE[m.phase.kind][e.type] as Handler<typeof e.type> | undefined;
  const effects: Effect[] = [];
  return { machine: handler ? handler(m, e as never, effects) : m, effects };
}
