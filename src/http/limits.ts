/**
 * Admission limits for event streams, checked when a stream opens:
 *
 *   MAX_STREAMS_PER_IP        open streams from one client IP   → 429 E_TOO_MANY_STREAMS
 *   MAX_SUBSCRIBERS           subscribers of this process       → 503 E_SUBSCRIBERS_FULL
 *   MAX_SUBSCRIBERS_PER_FLOW  subscribers of one flow here      → 503 E_FLOW_FULL
 *
 * Each answer carries `Retry-After` (RETRY_AFTER_S). 429 is the client's doing
 * (it should close streams it does not need); 503 is this process being full (a
 * load balancer may send the retry to another instance). 0 switches a limit off.
 *
 * The per-IP count is of open responses; the subscriber counts come from the hub
 * (`counts`), read in the same synchronous step as the subscription is
 * registered, so concurrent opens cannot overshoot.
 */
import { FlowsyncError } from "../errors";

export interface LimitsOptions {
  maxSubscribers: number;
  maxSubscribersPerFlow: number;
  maxStreamsPerIp: number;
  retryAfterS: number;
  /** Subscribers now: of the process (no flowId) or of one flow. */
  counts: (flowId?: string) => number;
}

export class StreamLimits {
  readonly #o: LimitsOptions;
  readonly #perIp = new Map<string, number>();

  constructor(options: LimitsOptions) {
    this.#o = options;
  }

  /** Open streams per IP, for tests and metrics. */
  streamsOf(ip: string): number {
    return this.#perIp.get(ip) ?? 0;
  }

  get trackedIps(): number {
    return this.#perIp.size;
  }

  /**
   * Admits one stream from `ip` to `flowId`, or throws. Returns the release
   * function (idempotent) to call when the stream's response closes.
   */
  admit(ip: string, flowId: string): () => void {
    const { maxSubscribers, maxSubscribersPerFlow, maxStreamsPerIp, retryAfterS, counts } = this.#o;
    const headers = { "Retry-After": String(retryAfterS) };
    const open = this.#perIp.get(ip) ?? 0;
    if (maxStreamsPerIp > 0 && open >= maxStreamsPerIp) {
      throw new FlowsyncError("E_TOO_MANY_STREAMS", `at most ${maxStreamsPerIp} open streams per client address`, { headers });
    }
    if (maxSubscribers > 0 && counts() >= maxSubscribers) {
      throw new FlowsyncError("E_SUBSCRIBERS_FULL", "this instance has no room for another subscriber", { headers });
    }
    if (maxSubscribersPerFlow > 0 && counts(flowId) >= maxSubscribersPerFlow) {
      throw new FlowsyncError("E_FLOW_FULL", "this flow has no room for another subscriber on this instance", { headers });
    }
    this.#perIp.set(ip, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#perIp.get(ip) ?? 1) - 1;
      if (left <= 0) this.#perIp.delete(ip);
      else this.#perIp.set(ip, left);
    };
  }
}
