/**
 * Frames encoded once and shared: consecutive frames of one flow, until a subscriber takes them, are one batch,
 * joined once and written as the same Buffer by every subscriber that holds all of it; and the
 * time-sliced scheduler that lets a long sweep coalesce what arrives while it runs.
 */
import { describe, expect, it } from "vitest";
import { FlowHub } from "../../src/hub/flow-hub";
import { ReplayBuffer } from "../../src/hub/replay-buffer";
import { checkPhaseScheduler, SubscriberQueue, type Chunk, type Schedule } from "../../src/hub/subscriber-queue";
import { text } from "../support/chunks";
import { seededRandom, testSeed } from "../support/random";

const tok = (n: number) => `82${String(n).padStart(8, "0")}`;
const frame = (flowId: string, n: number) => `id: ${n}\nevent: E\ndata: {"flowId":"${flowId}","n":${n}}\n\n`;

/** A scheduler the test runs by hand: `step()` is one check phase of at most `slice` callbacks. */
function manualScheduler(slice = Infinity): { schedule: Schedule; step: () => number; drain: () => void } {
  const queue: Array<() => void> = [];
  const step = () => {
    const batch = queue.splice(0, Math.min(queue.length, slice));
    for (const fn of batch) fn();
    return batch.length;
  };
  const drain = () => {
    while (step() > 0) continue;
  };
  return { schedule: (fn) => void queue.push(fn), step, drain };
}

function setup(slice = Infinity) {
  const sched = manualScheduler(slice);
  const hub = new FlowHub({ replay: new ReplayBuffer({ capacity: 10_000 }), schedule: sched.schedule });
  const queue = (flowId: string, o: { types?: string[]; paused?: boolean } = {}) => {
    const q = new SubscriberQueue({ maxBytes: 1 << 30, schedule: sched.schedule, paused: o.paused, types: o.types && new Set(o.types) });
    hub.subscribe(flowId, q);
    return q;
  };
  let n = 0;
  const publish = (flowId: string, type = "E") => {
    n++;
    hub.publish({ flowId, frame: frame(flowId, n), token: tok(n), type });
    return n;
  };
  return { hub, sched, queue, publish };
}

describe("shared batches", () => {
  it("a flow's frames leave as ONE Buffer shared by every subscriber that holds them all", () => {
    const { sched, queue, publish } = setup();
    const qs = Array.from({ length: 5 }, () => queue("a"));
    const other = queue("b");
    publish("a");
    publish("a");
    publish("b");
    publish("a");
    const taken = qs.map((q) => q.take()!);
    for (const t of taken) expect(t).toHaveLength(1);
    const shared = taken[0]![0]!;
    expect(Buffer.isBuffer(shared)).toBe(true);
    for (const t of taken) expect(Object.is(t[0], shared)).toBe(true);
    expect(shared.toString()).toBe(frame("a", 1) + frame("a", 2) + frame("a", 4));
    expect(text(other.take())).toBe(frame("b", 3));
    // Joining sealed the batch: a frame published now starts a new one, even in the same tick.
    publish("a");
    expect(text(qs[0]!.take())).toBe(frame("a", 5));
    sched.drain();
  });

  it("a subscriber that holds only part of a batch (joined late, narrowed, paused) gets its own frames, still shared bytes", () => {
    const { queue, publish } = setup();
    const full = queue("a");
    const narrowed = queue("a", { types: ["E"] });
    const paused = queue("a", { paused: true });
    publish("a");
    const late = queue("a");
    publish("a", "OTHER");
    publish("a");
    expect(text(full.take())).toBe(frame("a", 1) + frame("a", 2) + frame("a", 3));
    expect(full.take()).toBeNull();
    const mine = narrowed.take()!;
    expect(mine).toHaveLength(2);
    expect(text(mine)).toBe(frame("a", 1) + frame("a", 3));
    expect(text(late.take())).toBe(frame("a", 2) + frame("a", 3));
    expect(paused.take()).toBeNull();
    paused.release(tok(2)); // its backlog delivered up to 2
    expect(text(paused.take())).toBe(frame("a", 3));
  });

  it("randomized: many subscribers in different states each get exactly their flow's sequence", () => {
    const seed = testSeed("shared batches");
    const rand = seededRandom(seed);
    const { hub, sched, publish } = setup(1 + Math.floor(rand() * 7));
    const flows = ["a", "b", "c"];
    const published = new Map<string, { n: number; type: string }[]>(flows.map((f) => [f, []]));
    interface Sub {
      q: SubscriberQueue;
      flowId: string;
      joinedAfter: number;
      types?: Set<string>;
      backlogEnd?: number;
      got: string;
      reads: boolean;
    }
    const subs: Sub[] = [];
    const add = () => {
      const flowId = flows[Math.floor(rand() * flows.length)]!;
      const types = rand() < 0.25 ? new Set(["E"]) : undefined;
      const paused = rand() < 0.3;
      const q = new SubscriberQueue({ maxBytes: 1 << 30, schedule: sched.schedule, paused, types });
      const sub: Sub = { q, flowId, joinedAfter: publishedCount, types, got: "", reads: rand() < 0.8 };
      hub.subscribe(flowId, q);
      q.onReadable(() => {
        if (sub.reads) sub.got += text(q.take()) ?? "";
      });
      subs.push(sub);
    };
    let publishedCount = 0;
    for (let step = 0; step < 400; step++) {
      const r = rand();
      if (r < 0.45) {
        const flowId = flows[Math.floor(rand() * flows.length)]!;
        const type = rand() < 0.2 ? "OTHER" : "E";
        const n = publish(flowId, type);
        publishedCount = n;
        published.get(flowId)!.push({ n, type });
      } else if (r < 0.55) {
        add();
      } else if (r < 0.65) {
        const s = subs[Math.floor(rand() * subs.length)];
        if (s?.q.paused) {
          // Released at a random point at or after it joined, as a backlog hand-over would.
          s.backlogEnd = s.joinedAfter + Math.floor(rand() * Math.max(1, publishedCount - s.joinedAfter + 1));
          s.q.release(tok(s.backlogEnd));
        }
      } else if (r < 0.7) {
        const s = subs[Math.floor(rand() * subs.length)];
        if (s) s.reads = !s.reads;
      } else {
        sched.step();
      }
    }
    for (const s of subs) {
      s.reads = true;
      if (s.q.paused) {
        s.backlogEnd = s.joinedAfter;
        s.q.release(tok(s.joinedAfter));
      }
    }
    sched.drain();
    for (const s of subs) s.got += text(s.q.take()) ?? "";
    for (const s of subs) {
      const floor = Math.max(s.joinedAfter, s.backlogEnd ?? 0);
      const want = published
        .get(s.flowId)!
        .filter((e) => e.n > floor && (!s.types || s.types.has(e.type)))
        .map((e) => frame(s.flowId, e.n))
        .join("");
      expect(s.got, `seed ${seed}: subscriber of ${s.flowId} joined after ${s.joinedAfter}`).toBe(want);
    }
    expect(subs.length).toBeGreaterThan(10);
  });
});

describe("time-sliced check phases", () => {
  it("runs at most `slice` callbacks per check phase, in order; what is deferred meanwhile runs later", async () => {
    const schedule = checkPhaseScheduler(2);
    const ran: string[] = [];
    const phase = () => new Promise<void>((r) => setImmediate(r));
    for (const name of ["a", "b", "c", "d", "e"]) schedule(() => ran.push(name));
    schedule(() => {
      ran.push("f");
      schedule(() => ran.push("g"));
    });
    await phase();
    expect(ran).toEqual(["a", "b"]);
    await phase();
    expect(ran).toEqual(["a", "b", "c", "d"]);
    for (let i = 0; i < 4; i++) await phase();
    expect(ran).toEqual(["a", "b", "c", "d", "e", "f", "g"]);
  });

  it("a sweep cut into slices lets later subscribers take what arrived meanwhile in the same write", () => {
    const { sched, queue, publish } = setup(3);
    const writes: Chunk[][] = [];
    const qs = Array.from({ length: 9 }, () => queue("hot"));
    qs.forEach((q, i) =>
      q.onReadable(() => {
        const t = q.take();
        if (t) (writes[i] ??= []).push(Buffer.concat(t.map((c) => (typeof c === "string" ? Buffer.from(c) : c))));
      }),
    );
    publish("hot");
    sched.step(); // the batch closer and the first two subscribers
    publish("hot"); // arrives mid-sweep
    sched.drain();
    const texts = writes.map((w) => w.map((b) => b.toString()));
    // The first two wrote twice; the rest wrote both events at once.
    for (const i of [0, 1]) expect(texts[i]).toEqual([frame("hot", 1), frame("hot", 2)]);
    for (const i of [2, 3, 4, 5, 6, 7, 8]) expect(texts[i]).toEqual([frame("hot", 1) + frame("hot", 2)]);
  });
});
