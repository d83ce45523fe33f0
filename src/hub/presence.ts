/**
 * Presence: who is on a flow, across instances, without a broker. MongoDB carries it:
 *
 *   local joins/leaves ─▶ this instance's documents (one per flow it serves: its users with
 *   their connection counts, `<instance>:<flowId>`) ─▶ the ONE change stream of every instance
 *   ─▶ their remote entries ─▶ merged with their own users ─▶ PRESENCE frames to the flow's subscribers
 *
 * - Writes are debounced per flow: at most one per `writeIntervalMs` (1 s; TTL/3 when that is
 *   shorter), whatever the churn, and a flow with users is rewritten every TTL/3 (its refresh).
 * - A remote entry counts from when this instance saw it (its own clock, not the writer's); one
 *   not refreshed within the TTL is dropped by the sweep, which runs every TTL/4: the users of an
 *   instance that died without cleaning up disappear within 1.25 × TTL of its last refresh.
 * - Start reads the collection once (after the stream is open, so nothing falls in between);
 *   `reload()` does it again after a stream restart, whose missed deletes it could not see.
 * - `stop()` clears every timer, waits briefly for writes in flight, and removes this instance's
 *   documents at once, so the others drop its users without waiting for the TTL.
 * - MongoDB unreachable: writes fail (logged once, counted) and are retried by the next attempt;
 *   remote entries expire, so the list shrinks to this instance's own users, and it recovers by
 *   itself when writes and the stream work again.
 *
 * Frames are state, not history: no `id:`, not in the replay buffer; one is built per flow per
 * change (coalesced over `frameDelayMs`) and the same string goes to every subscriber of the flow.
 */
import type { ChangeStreamDocument } from "mongodb";
import type { Logger } from "pino";
import { isValidFlowId, presenceUserSchema, type ClaimValue, type PresenceData, type PresenceUser } from "../events/schemas";
import { formatEvent } from "../events/sse-frame";

/** The top-level fields of a presence document (a private field of a filter may not share one: flowsync.ts). */
export const PRESENCE_FIELDS: ReadonlySet<string> = new Set(["_id", "instance", "flowId", "users", "refreshedAt", "expiresAt"]);

/** What one instance writes for one flow. */
export interface PresenceDoc {
  /** `<instance>:<flowId>` (an instance id has no `:`). */
  _id: string;
  instance: string;
  flowId: string;
  users: PresenceUser[];
  refreshedAt: Date;
  /** For the TTL index (`expireAfterSeconds: 0`), which cleans up later; readers do not wait for it. */
  expiresAt: Date;
}

/** The presence collection, as this module needs it (src/flowsync.ts binds it to MongoDB). */
export interface PresenceStore {
  /** Upserts the document by `_id`. */
  put(doc: PresenceDoc): Promise<void>;
  remove(ids: readonly string[]): Promise<void>;
  readAll(): Promise<unknown[]>;
}

/** A connection's user: its id and public claims. */
export type PresenceIdentity = { id: string } & Record<string, ClaimValue>;

export interface PresenceOptions {
  /** This instance's id (random per start, without `:`). */
  instance: string;
  store: PresenceStore;
  ttlMs: number;
  /** Writes a frame to every subscriber of the flow here (FlowHub.send). */
  send: (flowId: string, frame: string) => void;
  /** Subscribers of the flow here: frames are built only for flows someone watches. */
  audience: (flowId: string) => number;
  logger: Logger;
  /** Least time between two writes of one flow. Default 1000 ms (TTL/3 if shorter). */
  writeIntervalMs?: number;
  /** How long changes are collected into one frame. Default 50 ms. */
  frameDelayMs?: number;
  now?: () => number;
}

export interface PresenceCounters {
  /** Documents written or removed. */
  writes: number;
  writeErrors: number;
  /** Presence documents read from the change stream or the initial read. */
  received: number;
  /** Presence documents that were not valid (logged). */
  invalid: number;
  /** Remote entries dropped because they were not refreshed within the TTL. */
  expired: number;
}

interface LocalUser {
  user: PresenceIdentity;
  connections: number;
}

interface FlowWrites {
  lastAt: number;
  dirty: boolean;
  /** A document of ours may exist for this flow. */
  stored: boolean;
  inFlight: Promise<void> | undefined;
  timer: NodeJS.Timeout | undefined;
}

interface Remote {
  users: PresenceUser[];
  seenAt: number;
}

const STOP_WAIT_MS = 2000;

export class Presence {
  readonly counters: PresenceCounters = { writes: 0, writeErrors: 0, received: 0, invalid: 0, expired: 0 };
  readonly #o: PresenceOptions;
  readonly #now: () => number;
  readonly #refreshMs: number;
  readonly #intervalMs: number;
  readonly #frameDelayMs: number;
  readonly #local = new Map<string, Map<string, LocalUser>>();
  readonly #writes = new Map<string, FlowWrites>();
  /** flowId → instance → its users. */
  readonly #remote = new Map<string, Map<string, Remote>>();
  /** What the flow's subscribers last got: the users' ids and JSON. */
  readonly #sent = new Map<string, { ids: string[]; json: string }>();
  readonly #framesDue = new Set<string>();
  #frameTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  /** Keys the stream told about while the collection was being read: the read's copy is older. */
  // One set per reload in flight: the keys the change stream reported meanwhile (newer than that read).
  readonly #touched = new Set<Set<string>>();
  #failing = false;
  #stopped = false;

  constructor(options: PresenceOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#refreshMs = Math.floor(options.ttlMs / 3);
    this.#intervalMs = Math.min(options.writeIntervalMs ?? 1000, this.#refreshMs);
    this.#frameDelayMs = options.frameDelayMs ?? 50;
  }

  /** This instance's id in the presence documents (`<instance>:<flowId>`). */
  get instance(): string {
    return this.#o.instance;
  }

  /** Reads the entries the other instances already have, and starts the expiry sweep. */
  async start(): Promise<void> {
    this.#sweepTimer = setInterval(() => this.#sweep(), Math.max(1, Math.floor(this.#o.ttlMs / 4)));
    this.#sweepTimer.unref();
    await this.reload();
  }

  /** Reads the whole collection again (at start, and after the stream restarted and may have missed deletes). */
  async reload(): Promise<void> {
    const touched = new Set<string>();
    this.#touched.add(touched);
    let docs: unknown[];
    try {
      docs = await this.#o.store.readAll();
    } catch (err) {
      this.#o.logger.warn({ err }, "presence: cannot read the other instances' entries; listing this instance's users until the change stream brings theirs");
      return;
    } finally {
      this.#touched.delete(touched);
    }
    if (this.#stopped) return;
    const now = this.#now();
    // What the read no longer holds is gone (a delete the stream may have missed), unless the stream told of it since.
    const stored = new Set(docs.map((doc) => (doc as { _id?: unknown })._id));
    for (const [flowId, byInstance] of [...this.#remote]) {
      for (const instance of [...byInstance.keys()]) {
        const id = `${instance}:${flowId}`;
        if (!stored.has(id) && !touched.has(id)) this.#forget(instance, flowId);
      }
    }
    for (const doc of docs) {
      const id = (doc as { _id?: unknown })._id;
      if (typeof id === "string" && touched.has(id)) continue;
      const refreshed = (doc as { refreshedAt?: unknown }).refreshedAt;
      // The writer's clock, but never later than ours: an old document expires on time.
      const seenAt = refreshed instanceof Date ? Math.min(now, refreshed.getTime()) : now - this.#o.ttlMs;
      if (seenAt + this.#o.ttlMs >= now) this.#learn(doc, seenAt);
    }
  }

  /** Lists `user` on `flowId` for one more connection; returns its (idempotent) leave. */
  join(flowId: string, user: PresenceIdentity): () => void {
    if (this.#stopped) return () => {};
    let users = this.#local.get(flowId);
    if (!users) this.#local.set(flowId, (users = new Map()));
    const entry = users.get(user.id);
    if (entry) {
      entry.connections++;
      entry.user = user;
    } else {
      users.set(user.id, { user, connections: 1 });
    }
    this.#changed(flowId);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#leave(flowId, user.id);
    };
  }

  /**
   * The PRESENCE frame for a subscriber that just registered: the list now, `joined`/`left`
   * empty. Called in the same synchronous step as the registration, so every later change
   * reaches the subscriber as a later frame.
   */
  initialFrame(flowId: string): string {
    const users = this.#merged(flowId);
    const json = JSON.stringify(users);
    if (!this.#sent.has(flowId)) this.#sent.set(flowId, { ids: users.map((u) => u.id), json });
    return presenceFrame(flowId, json, [], []);
  }

  /** A change of the presence collection, from the instance's one change stream. Never throws. */
  handle(change: ChangeStreamDocument): void {
    if (this.#stopped) return;
    if (!("documentKey" in change)) {
      // The collection (or database) was dropped or renamed: every entry is gone, ours included.
      if (change.operationType === "drop" || change.operationType === "rename" || change.operationType === "dropDatabase") this.#forgetAll();
      return;
    }
    const id = (change.documentKey as { _id?: unknown })._id;
    const key = typeof id === "string" ? splitKey(id) : undefined;
    if (!key) {
      this.counters.invalid++;
      this.#o.logger.warn({ id: String(id) }, "presence: a document that is not <instance>:<flowId> in the presence collection, skipped");
      return;
    }
    for (const touched of this.#touched) touched.add(id as string);
    if (key.instance === this.#o.instance) return;
    if (change.operationType === "delete") return this.#forget(key.instance, key.flowId);
    // An update whose document is already gone: the delete follows.
    if ("fullDocument" in change && change.fullDocument) this.#learn(change.fullDocument, this.#now());
  }

  /** Users of all flows this instance knows of (each flow's merged list), and of its own connections. */
  usersPresent(): { all: number; local: number } {
    let all = 0;
    let local = 0;
    for (const users of this.#local.values()) local += users.size;
    for (const flowId of new Set([...this.#local.keys(), ...this.#remote.keys()])) all += this.#merged(flowId).length;
    return { all, local };
  }

  /** Idempotent: timers cleared, this instance's documents removed (bounded wait). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#sweepTimer);
    clearTimeout(this.#frameTimer);
    this.#framesDue.clear();
    const pending: Promise<void>[] = [];
    const ids: string[] = [];
    for (const [flowId, w] of this.#writes) {
      clearTimeout(w.timer);
      if (w.inFlight) pending.push(w.inFlight);
      if (w.stored || w.inFlight) ids.push(this.#docId(flowId));
    }
    this.#writes.clear();
    this.#local.clear();
    if (ids.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)));
    try {
      // A write still in flight would land after the removal and leave a document until the TTL.
      await Promise.race([Promise.allSettled(pending), deadline]);
      // Its failure is logged also when it comes after the deadline (the race would only drop it).
      const removed = this.#o.store.remove(ids).then(
        () => void (this.counters.writes += ids.length),
        (err: unknown) => this.#o.logger.warn({ err }, "presence: removing this instance's entries failed; the others drop them after the TTL"),
      );
      await Promise.race([removed, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  #leave(flowId: string, id: string): void {
    if (this.#stopped) return;
    const users = this.#local.get(flowId);
    const entry = users?.get(id);
    if (!users || !entry) return;
    if (--entry.connections === 0) users.delete(id);
    if (users.size === 0) this.#local.delete(flowId);
    this.#changed(flowId);
  }

  #changed(flowId: string): void {
    let w = this.#writes.get(flowId);
    if (!w) this.#writes.set(flowId, (w = { lastAt: -Infinity, dirty: false, stored: false, inFlight: undefined, timer: undefined }));
    w.dirty = true;
    this.#armWrite(flowId, w);
    this.#frameDue(flowId);
  }

  #docId(flowId: string): string {
    return `${this.#o.instance}:${flowId}`;
  }

  /** The flow's next write: a change at most once per interval, else the refresh while it has users. */
  #armWrite(flowId: string, w: FlowWrites): void {
    if (this.#stopped || w.inFlight) return; // the write in flight re-arms when done
    clearTimeout(w.timer);
    w.timer = undefined;
    if (!w.dirty && !this.#local.has(flowId)) {
      if (!w.stored) this.#writes.delete(flowId);
      return;
    }
    const due = w.lastAt + (w.dirty ? this.#intervalMs : this.#refreshMs);
    w.timer = setTimeout(() => this.#write(flowId, w), Math.max(0, due - this.#now()));
    w.timer.unref();
  }

  #write(flowId: string, w: FlowWrites): void {
    w.timer = undefined;
    w.dirty = false;
    const now = (w.lastAt = this.#now());
    const users = this.#localUsers(flowId);
    const { store, instance, ttlMs, logger } = this.#o;
    if (users.length === 0 && !w.stored) return this.#armWrite(flowId, w);
    const _id = this.#docId(flowId);
    const removing = users.length === 0;
    // Marked before the write: a failed or interrupted one may still have landed.
    w.stored = true;
    const op = removing ? store.remove([_id]) : store.put({ _id, instance, flowId, users, refreshedAt: new Date(now), expiresAt: new Date(now + ttlMs) });
    w.inFlight = op.then(
      () => {
        this.counters.writes++;
        if (removing) w.stored = false;
        if (this.#failing) logger.info("presence: writes succeed again");
        this.#failing = false;
      },
      (err: unknown) => {
        this.counters.writeErrors++;
        w.dirty = true;
        if (!this.#failing) logger.warn({ err, flowId }, "presence: write failed; retrying (other instances see this instance's users again once it works)");
        this.#failing = true;
      },
    );
    void w.inFlight.finally(() => {
      w.inFlight = undefined;
      this.#armWrite(flowId, w);
    });
  }

  #localUsers(flowId: string): PresenceUser[] {
    const out: PresenceUser[] = [];
    for (const { user, connections } of this.#local.get(flowId)?.values() ?? []) out.push({ ...user, connections });
    return out.sort(byId);
  }

  #merged(flowId: string): PresenceUser[] {
    const byUser = new Map<string, PresenceUser>();
    const add = (u: PresenceUser) => {
      const seen = byUser.get(u.id);
      if (seen) seen.connections += u.connections;
      else byUser.set(u.id, { ...u });
    };
    for (const u of this.#localUsers(flowId)) add(u);
    const remote = this.#remote.get(flowId);
    if (remote) for (const instance of [...remote.keys()].sort()) for (const u of remote.get(instance)!.users) add(u);
    // `connections` last in every entry, so equal lists serialize equally.
    return [...byUser.values()].map(({ connections, ...rest }) => ({ ...rest, connections })).sort(byId);
  }

  #learn(doc: unknown, seenAt: number): void {
    this.counters.received++;
    const d = doc as Partial<PresenceDoc>;
    const key = typeof d._id === "string" ? splitKey(d._id) : undefined;
    const users = Array.isArray(d.users) ? d.users.map((u) => presenceUserSchema.safeParse(u)) : undefined;
    if (!key || key.instance !== d.instance || key.flowId !== d.flowId || !users || users.some((u) => !u.success)) {
      this.counters.invalid++;
      this.#o.logger.warn({ id: String(d._id) }, "presence: invalid presence document skipped");
      return;
    }
    if (key.instance === this.#o.instance) return;
    let byInstance = this.#remote.get(key.flowId);
    if (!byInstance) this.#remote.set(key.flowId, (byInstance = new Map()));
    byInstance.set(key.instance, { users: users.map((u) => u.data!), seenAt });
    this.#frameDue(key.flowId);
  }

  #forget(instance: string, flowId: string): void {
    const byInstance = this.#remote.get(flowId);
    if (!byInstance?.delete(instance)) return;
    if (byInstance.size === 0) this.#remote.delete(flowId);
    this.#frameDue(flowId);
  }

  #forgetAll(): void {
    for (const flowId of this.#remote.keys()) this.#frameDue(flowId);
    this.#remote.clear();
    // Ours went too: write them again.
    for (const [flowId, w] of this.#writes) {
      w.stored = false;
      if (this.#local.has(flowId)) {
        w.dirty = true;
        this.#armWrite(flowId, w);
      }
    }
  }

  #sweep(): void {
    // What was sent to a flow nobody here watches any more (its last watcher was unlisted: no change marked it).
    for (const flowId of this.#sent.keys()) if (this.#o.audience(flowId) === 0) this.#sent.delete(flowId);
    const oldest = this.#now() - this.#o.ttlMs;
    for (const [flowId, byInstance] of this.#remote) {
      for (const [instance, remote] of byInstance) {
        if (remote.seenAt >= oldest) continue;
        this.counters.expired++;
        this.#o.logger.info({ flowId, instance }, "presence: an instance's entry was not refreshed within PRESENCE_TTL_MS: its users are gone");
        this.#forget(instance, flowId);
      }
    }
  }

  #frameDue(flowId: string): void {
    if (this.#stopped) return;
    this.#framesDue.add(flowId);
    if (this.#frameTimer) return;
    this.#frameTimer = setTimeout(() => this.#sendFrames(), this.#frameDelayMs);
    this.#frameTimer.unref();
  }

  #sendFrames(): void {
    this.#frameTimer = undefined;
    const flows = [...this.#framesDue];
    this.#framesDue.clear();
    for (const flowId of flows) {
      if (this.#o.audience(flowId) === 0) {
        this.#sent.delete(flowId);
        continue;
      }
      const users = this.#merged(flowId);
      const json = JSON.stringify(users);
      const prev = this.#sent.get(flowId);
      if (prev?.json === json) continue;
      const ids = users.map((u) => u.id);
      const before = new Set(prev?.ids);
      const after = new Set(ids);
      this.#sent.set(flowId, { ids, json });
      this.#o.send(
        flowId,
        presenceFrame(
          flowId,
          json,
          ids.filter((id) => !before.has(id)),
          (prev?.ids ?? []).filter((id) => !after.has(id)),
        ),
      );
    }
  }
}

/** The frame of a `PresenceData`, with `users` as the JSON already made for the comparison (not serialized twice). */
function presenceFrame(flowId: PresenceData["flowId"], usersJson: string, joined: PresenceData["joined"], left: PresenceData["left"]): string {
  return formatEvent({
    event: "PRESENCE",
    data: `{"flowId":${JSON.stringify(flowId)},"users":${usersJson},"joined":${JSON.stringify(joined)},"left":${JSON.stringify(left)}}`,
  });
}

function splitKey(id: string): { instance: string; flowId: string } | undefined {
  const at = id.indexOf(":");
  if (at <= 0) return undefined;
  const flowId = id.slice(at + 1);
  return isValidFlowId(flowId) ? { instance: id.slice(0, at), flowId } : undefined;
}

const byId = (a: PresenceUser, b: PresenceUser) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
