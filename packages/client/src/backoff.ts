/**
 * Exponential backoff with the jitter as a parameter: the client and the
 * server's change watcher grow their delays the same way but spread them
 * differently (the client waits exactly the server's `retry:` hint first; the
 * watcher uses full jitter so that restarted replicas do not reconnect together).
 *
 *   cap(attempt) = min(maxMs, initialMs · 2^attempt)     attempt = 0, 1, 2, …
 *   delay        = jitter(cap, attempt)
 *
 * Pure: randomness comes in through the jitter, so tests pass a fixed one.
 * See https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 * for the jitter variants.
 */

/** Turns the capped delay into the one to wait; `attempt` counts the retries before this one. */
export type Jitter = (capMs: number, attempt: number) => number;

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  jitter: Jitter;
}

// 2^30 × any positive initial delay is past every sane maxMs: stop growing there.
const MAX_EXPONENT = 30;

export function backoffDelay(attempt: number, { initialMs, maxMs, jitter }: BackoffOptions): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(0, attempt), MAX_EXPONENT));
  return jitter(cap, attempt);
}

/** Anywhere in [0, cap). */
export const fullJitter =
  (random: () => number = Math.random): Jitter =>
  (cap) =>
    Math.floor(random() * cap);

/** Anywhere in [cap/2, cap): never much shorter than the cap, still spread. */
export const equalJitter =
  (random: () => number = Math.random): Jitter =>
  (cap) =>
    cap / 2 + (random() * cap) / 2;
