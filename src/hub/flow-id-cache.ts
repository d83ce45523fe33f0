/**
 * Remembers which flow each document belongs to, so that a delete without a
 * pre-image can still be routed. Bounded (least recently written goes first):
 * a miss is a counted, logged skip, never unbounded memory.
 */
import { FlowsyncError } from "../errors";

export class FlowIdCache {
  readonly #map = new Map<string, string>();

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new FlowsyncError("E_INTERNAL", `FlowIdCache capacity must be an integer ≥ 1, got ${capacity}`);
  }

  get size(): number {
    return this.#map.size;
  }

  get(collection: string, id: string): string | undefined {
    return this.#map.get(key(collection, id));
  }

  set(collection: string, id: string, flowId: string): void {
    const k = key(collection, id);
    this.#map.delete(k); // re-insert at the young end
    this.#map.set(k, flowId);
    if (this.#map.size > this.capacity) this.#map.delete(this.#map.keys().next().value!);
  }
}

function key(collection: string, id: string): string {
  return `${collection}\u0000${id}`;
}
