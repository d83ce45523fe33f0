/**
 * One interval per heartbeat period for every SSE connection of one app, instead
 * of a timer each. Owned by the app (createApp makes one, or takes one a test
 * injects); nothing is shared between two apps in one process. An interval
 * clears itself on the first tick that finds no member left, so an idle app
 * holds no timer.
 */

/** What a heartbeat reaches: an SSE connection. */
export interface HeartbeatMember {
  heartbeat(): void;
}

export class Heartbeats {
  readonly #beats = new Map<number, Set<HeartbeatMember>>();

  /** Starts sending `member` a heartbeat every `ms` (joining the interval of that period). */
  add(ms: number, member: HeartbeatMember): void {
    let set = this.#beats.get(ms);
    if (!set) {
      const members = new Set<HeartbeatMember>();
      const timer = setInterval(() => {
        for (const m of members) m.heartbeat();
        if (members.size === 0) {
          clearInterval(timer);
          this.#beats.delete(ms);
        }
      }, ms);
      timer.unref();
      this.#beats.set(ms, (set = members));
    }
    set.add(member);
  }

  delete(ms: number, member: HeartbeatMember): void {
    this.#beats.get(ms)?.delete(member);
  }

  /** Connections with heartbeats, all periods together. */
  get size(): number {
    let n = 0;
    for (const set of this.#beats.values()) n += set.size;
    return n;
  }
}
