import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Heartbeats } from "../../src/http/heartbeats";

const member = () => ({
  beats: 0,
  heartbeat() {
    this.beats++;
  },
});

describe("Heartbeats (one registry per app)", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it("one interval per period for all members; two registries share nothing", () => {
    const a = new Heartbeats();
    const b = new Heartbeats();
    const [a1, a2, b1] = [member(), member(), member()];
    a.add(1000, a1);
    a.add(1000, a2);
    b.add(1000, b1);
    expect(vi.getTimerCount()).toBe(2); // one for `a`, one for `b`
    vi.advanceTimersByTime(3000);
    expect([a1.beats, a2.beats, b1.beats]).toEqual([3, 3, 3]);
    a.delete(1000, a1);
    vi.advanceTimersByTime(1000);
    expect([a1.beats, a2.beats, b1.beats]).toEqual([3, 4, 4]);
    expect(a.size).toBe(1);
  });

  it("clears its interval on the first tick with no member left", () => {
    const beats = new Heartbeats();
    const m = member();
    beats.add(500, m);
    beats.delete(500, m);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(500);
    expect(vi.getTimerCount()).toBe(0);
    expect(m.beats).toBe(0);
    beats.add(500, m); // a new member starts a new interval
    vi.advanceTimersByTime(500);
    expect(m.beats).toBe(1);
  });
});
