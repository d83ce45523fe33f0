import { describe, expect, it } from "vitest";
import { ReplayBuffer, type ReplayEntry } from "../../src/hub/replay-buffer";
import { subPosition } from "../../src/token";

// Tokens like the server's: uppercase hex of equal length, string order = stream order.
const tok = (n: number) => `82${n.toString(16).toUpperCase().padStart(8, "0")}`;
const entry = (n: number, flowId = "a"): ReplayEntry => ({ token: tok(n), flowId, frame: `frame ${n}\n\n` });
const frames = (entries: ReplayEntry[] | undefined) => entries?.map((e) => e.frame);

function filled(capacity: number, ...ns: number[]): ReplayBuffer {
  const buffer = new ReplayBuffer({ capacity });
  for (const n of ns) buffer.push(entry(n, n % 2 === 0 ? "even" : "odd"));
  return buffer;
}

describe("ReplayBuffer", () => {
  it("refuses a capacity below 1", () => {
    expect(() => new ReplayBuffer({ capacity: 0 })).toThrow(expect.objectContaining({ code: "E_INTERNAL" }));
    expect(() => new ReplayBuffer({ capacity: 1.5 })).toThrow(expect.objectContaining({ code: "E_INTERNAL" }));
  });

  it("returns the flow's frames strictly after a token, in order", () => {
    const buffer = filled(10, 1, 2, 3, 4, 5, 6);
    expect(frames(buffer.after(tok(2), "even"))).toEqual(["frame 4\n\n", "frame 6\n\n"]);
    expect(frames(buffer.after(tok(2), "odd"))).toEqual(["frame 3\n\n", "frame 5\n\n"]);
    expect(frames(buffer.after(tok(6), "even"))).toEqual([]);
    expect(buffer.after(tok(1), "nobody")).toEqual([]);
  });

  it("answers for a token between entries (a high-water-mark cursor from a snapshot)", () => {
    const buffer = new ReplayBuffer({ capacity: 10 });
    for (const n of [10, 20, 30]) buffer.push(entry(n));
    expect(frames(buffer.after(tok(15), "a"))).toEqual(["frame 20\n\n", "frame 30\n\n"]);
    expect(frames(buffer.after(tok(99), "a"))).toEqual([]);
  });

  it("knows nothing before its first entry, or when empty", () => {
    expect(new ReplayBuffer({ capacity: 3 }).after(tok(1), "a")).toBeUndefined();
    const buffer = filled(3, 5, 6);
    expect(buffer.after(tok(4), "odd")).toBeUndefined();
    expect(frames(buffer.after(tok(5), "even"))).toEqual(["frame 6\n\n"]);
  });

  it("window edges after eviction: the last evicted token is still covered, older is not", () => {
    const buffer = filled(3, 1, 2, 3, 4, 5); // keeps 3,4,5; evicted up to 2
    expect(buffer.size).toBe(3);
    expect(buffer.oldestToken).toBe(tok(3));
    expect(buffer.newestToken).toBe(tok(5));
    expect(buffer.after(tok(1), "odd")).toBeUndefined();
    expect(frames(buffer.after(tok(2), "odd"))).toEqual(["frame 3\n\n", "frame 5\n\n"]);
    expect(frames(buffer.after(tok(3), "odd"))).toEqual(["frame 5\n\n"]);
  });

  it("capacity 1: only the newest event and the one just before it are covered", () => {
    const buffer = new ReplayBuffer({ capacity: 1 });
    buffer.push(entry(1));
    expect(frames(buffer.after(tok(1), "a"))).toEqual([]);
    expect(buffer.after(tok(0), "a")).toBeUndefined();
    buffer.push(entry(2));
    expect(frames(buffer.after(tok(1), "a"))).toEqual(["frame 2\n\n"]);
    expect(frames(buffer.after(tok(2), "a"))).toEqual([]);
    buffer.push(entry(3));
    expect(buffer.after(tok(1), "a")).toBeUndefined();
    expect(frames(buffer.after(tok(2), "a"))).toEqual(["frame 3\n\n"]);
    expect(buffer.size).toBe(1);
  });

  it("wraps around the ring many times and stays consistent", () => {
    const buffer = new ReplayBuffer({ capacity: 7 });
    for (let n = 1; n <= 100; n++) buffer.push(entry(n));
    expect(frames(buffer.after(tok(93), "a"))).toEqual([94, 95, 96, 97, 98, 99, 100].map((n) => `frame ${n}\n\n`));
    expect(buffer.after(tok(92), "a")).toBeUndefined();
    for (let t = 93; t <= 100; t++) expect(buffer.after(tok(t), "a")).toHaveLength(100 - t);
  });

  it("reset(floor) forgets entries and covers everything after the floor", () => {
    const buffer = filled(5, 1, 2, 3);
    buffer.reset(tok(10));
    expect(buffer.size).toBe(0);
    expect(buffer.after(tok(3), "odd")).toBeUndefined();
    expect(buffer.after(tok(10), "odd")).toEqual([]);
    buffer.push(entry(11, "odd"));
    expect(frames(buffer.after(tok(10), "odd"))).toEqual(["frame 11\n\n"]);
    buffer.reset();
    expect(buffer.covers(tok(11))).toBe(false);
  });

  it("restarts the window if the stream goes backwards instead of mixing histories", () => {
    const buffer = filled(5, 5, 6, 7);
    buffer.push(entry(3, "odd"));
    expect(buffer.size).toBe(1);
    expect(buffer.after(tok(2), "odd")).toBeUndefined();
    expect(frames(buffer.after(tok(3), "odd"))).toEqual([]);
  });
});

describe("ReplayBuffer with sub-positions (one change, several events)", () => {
  const sub = (n: number, index: number) => subPosition(tok(n), index, { t: 1, i: n });
  const at = (token: string): ReplayEntry => ({ token, flowId: "a", frame: `${token}\n\n` });

  it("serves the rest of a change after any of its events, and only what follows after its token", () => {
    const buffer = new ReplayBuffer({ capacity: 10 });
    for (const token of [tok(1), sub(2, 0), sub(2, 1), tok(2), tok(3)]) buffer.push(at(token));
    expect(frames(buffer.after(sub(2, 0), "a"))).toEqual([`${sub(2, 1)}\n\n`, `${tok(2)}\n\n`, `${tok(3)}\n\n`]);
    expect(frames(buffer.after(sub(2, 1), "a"))).toEqual([`${tok(2)}\n\n`, `${tok(3)}\n\n`]);
    expect(frames(buffer.after(tok(2), "a"))).toEqual([`${tok(3)}\n\n`]);
    expect(frames(buffer.after(tok(1), "a"))?.length).toBe(4);
  });

  it("does not vouch for a change whose first events were evicted", () => {
    const buffer = new ReplayBuffer({ capacity: 2 });
    for (const token of [sub(2, 0), sub(2, 1), tok(2)]) buffer.push(at(token));
    // sub(2, 0) is gone: after it, the buffer still has everything; before it, nothing.
    expect(frames(buffer.after(sub(2, 0), "a"))).toEqual([`${sub(2, 1)}\n\n`, `${tok(2)}\n\n`]);
    expect(buffer.after(tok(1), "a")).toBeUndefined();
  });
});
