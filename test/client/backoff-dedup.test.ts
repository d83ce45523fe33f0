import { describe, expect, it } from "vitest";
import { backoffDelay, equalJitter, fullJitter, type Jitter } from "../../packages/client/src/backoff";
import { createDedupWindow } from "../../packages/client/src/dedup";

const none: Jitter = (cap) => cap;

describe("backoffDelay", () => {
  it("doubles from initialMs up to maxMs, then stays there", () => {
    const delays = [0, 1, 2, 3, 4, 5, 60].map((a) => backoffDelay(a, { initialMs: 100, maxMs: 1000, jitter: none }));
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it("takes its jitter as a parameter: full jitter in [0, cap), equal jitter in [cap/2, cap)", () => {
    const opts = (jitter: Jitter) => ({ initialMs: 100, maxMs: 10_000, jitter });
    expect(backoffDelay(3, opts(fullJitter(() => 0)))).toBe(0);
    expect(backoffDelay(3, opts(fullJitter(() => 0.999)))).toBe(799);
    expect(backoffDelay(3, opts(equalJitter(() => 0)))).toBe(400);
    expect(backoffDelay(3, opts(equalJitter(() => 0.5)))).toBe(600);
    const seen: number[] = [];
    backoffDelay(
      2,
      opts((cap, attempt) => (seen.push(cap, attempt), 0)),
    );
    expect(seen).toEqual([400, 2]);
  });
});

describe("createDedupWindow", () => {
  it("drops a repeat within the window and forgets the oldest beyond it", () => {
    const w = createDedupWindow(3);
    expect(["a", "b", "a", "c"].map((id) => w.remember(id))).toEqual([true, true, false, true]);
    expect(w.remember("d")).toBe(true); // evicts a
    expect(w.remember("a")).toBe(true); // evicts b
    expect(w.remember("c")).toBe(false);
    expect(w.remember("b")).toBe(true);
  });
});
