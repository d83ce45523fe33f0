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

type Handler<T extends ConnectionEventType> = (m: Machine, e: Extract<ConnectionEvent, { type: T }>) => Step;
type Row = { readonly [T in ConnectionEventType]?: Handler<T> };

const stay = (m: Machine): Step => ({ machine: m, effects: [] });

/** Moves the public status, with a `state` effect when it changes or an error explains it. */
function status(m: Machine, next: ConnectionState, error?: Error): { machine: Machine; effects: Effect[] } {
  if (next === m.status && error === undefined) return { machine: m, effects: [] };
  return { machine: { ...m, status: next }, effects: [{ type: "state", state: next, error }] };
}

function resync(m: Machine, reason: SnapshotReason): Step {
  const s = status({ ...m, phase: { kind: "snapshot", reason }, needsSnapshot: true }, reason === "initial" ? "connecting" : "resyncing");
  return { machine: s.machine, effects: [...s.effects, { type: "fetchSnapshot", reason }] };
}

function connect(m: Machine): Step {
  if (m.needsSnapshot) return resync(m, "reset");
  return { machine: { ...m, phase: { kind: "connecting" } }, effects: [{ type: "openStream", from: m.lastEventId }] };
}

function fail(m: Machine, error: Error): Step {
  const s = status({ ...m, phase: { kind: "closed" } }, "closed", error);
  return { machine: s.machine, effects: [{ type: "stop" }, ...s.effects, { type: "report", error }] };
}

function backoff(m: Machine, then: "connect" | SnapshotReason): Step {
  return {
    machine: { ...m, phase: { kind: "waiting", then }, attempt: m.attempt + 1 },
    effects: [{ type: "backoff", attempt: m.attempt, initialMs: m.retryMs }],
  };
}

// Handled the same in every phase but `closed`.
const always: Row = {
  close: (m) => {
    const s = status({ ...m, phase: { kind: "closed" } }, "closed");
    return { machine: s.machine, effects: [{ type: "stop" }, ...s.effects] };
  },
  reconnect: (m, e) => {
    const s = status({ ...m, phase: { kind: "waiting", then: "connect" } }, "reconnecting");
    return { machine: s.machine, effects: [...s.effects, { type: "wait", delayMs: e.delayMs }] };
  },
  snapshot: (m, e) => stay({ ...m, lastEventId: e.cursor, needsSnapshot: false }),
  retryHint: (m, e) => stay({ ...m, retryMs: e.ms }),
};

// What a live transport reports, in any of its phases.
const streaming: Row = {
  ...always,
  cursor: (m, e) => stay({ ...m, lastEventId: e.id }),
  reset: (m) => resync(m, "reset"),
  opened: (m) => {
    const s = status({ ...m, phase: { kind: "open" }, attempt: 0, opens: m.opens + 1 }, "open");
    return { machine: s.machine, effects: s.effects };
  },
  interrupted: (m) => status({ ...m, phase: { kind: "interrupted" } }, "reconnecting"),
  ended: (m, e) => {
    if (e.error && isFatal(e.error)) return fail(m, e.error);
    const s = status(m, "reconnecting", e.error);
    const b = backoff(s.machine, "connect");
    return { machine: b.machine, effects: [...s.effects, ...b.effects] };
  },
};

/** The table: which events each phase handles. Anything else leaves the machine as it is. */
export const TABLE: { readonly [P in PhaseKind]: Row } = {
  idle: {
    ...always,
    start: (m, e) => (e.fetchSnapshot ? resync(m, "initial") : connect(m)),
  },
  snapshot: {
    ...always,
    fetched: (m, e) => connect({ ...m, lastEventId: e.cursor, needsSnapshot: false, attempt: 0 }),
    fetchFailed: (m, e) => {
      if (isFatal(e.error)) return fail(m, e.error);
      const reason = m.phase.kind === "snapshot" ? m.phase.reason : "reset";
      // The status stays (connecting / resyncing) but now says why it is retrying.
      const s = status(m, m.status, e.error);
      const b = backoff(s.machine, reason);
      return { machine: b.machine, effects: [...s.effects, { type: "report", error: e.error }, ...b.effects] };
    },
  },
  connecting: streaming,
  open: streaming,
  interrupted: streaming,
  waiting: {
    ...always,
    timer: (m) => (m.phase.kind === "waiting" && m.phase.then !== "connect" ? resync(m, m.phase.then) : connect(m)),
  },
  closed: {},
};

export function transition(m: Machine, e: ConnectionEvent): Step {
  const handler = TABLE[m.phase.kind][e.type] as Handler<typeof e.type> | undefined;
  return handler ? handler(m, e as never) : stay(m);
}
