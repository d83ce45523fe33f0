/**
 * The client's own at-most-once guarantee: a bounded window of the cursors of
 * recent events. The server sends nothing twice; a browser that replays a
 * stretch after reconnecting (or a proxy that does) must not apply it twice.
 *
 * A ring of the last `size` cursors plus a set for O(1) look-up: memory stays
 * bounded however long the subscription lives.
 */
export interface DedupWindow {
  /** True the first time `cursor` is seen (within the window), false for a repeat. */
  remember(cursor: string): boolean;
}

export function createDedupWindow(size: number): DedupWindow {
  const capacity = Math.max(1, Math.floor(size));
  const seen = new Set<string>();
  const ring: string[] = [];
  let head = 0;
  return {
    remember(cursor) {
      if (seen.has(cursor)) return false;
      seen.add(cursor);
      if (ring.length < capacity) ring.push(cursor);
      else {
        seen.delete(ring[head] as string);
        ring[head] = cursor;
        head = (head + 1) % capacity;
      }
      return true;
    },
  };
}
