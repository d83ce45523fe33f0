/**
 * Frames encoded once and shared: the frames a flow publishes before the hub's next fan-out are one batch,
 * encoded once and written as the same Buffer to every subscriber that wants all of it (the others get
 * slices of it); and the time-sliced scheduler that lets a long sweep coalesce what arrives while it runs.
 */
import { describe, expect, it } from "vitest";
import { FlowHub } from "../../src/hub/flow-hub";
import { ReplayBuffer } from "../../src/hub/replay-buffer";
import { checkPhaseScheduler, SubscriberQueue, type Chunk, type Schedule } from "../../src/hub/subscriber-queue";
import { text } from "../support/chunks";
import { seededRandom, testSeed } from "../support/random";

const tok = (n: number) => `82${String(n).padStart(8, "0")}`;
const frame = (flowId: string, n: number) => `id: ${n}\nevent: E\ndata: {"flowId":"${flowId}","n":${n}}\n\n`;

/** A scheduler the test runs by hand: `step()` is one check phase: what came `first`, then at most `slice` callbacks. */
function manualScheduler(slice = Infinity): { schedule: Schedule; step: () => number; drain: () => void } {
  const queue: Array<() => void> = [];
  const urgent: Array<() => void> = [];
  const step = () => {
    const now = urgent.splice(0);
    for (const fn of now) fn();
    const batch = queue.splice(0, Math.min(queue.length, slice));
    for (const fn of batch) fn();
    return now.length + batch.length;
  };
  const drain = () => {
    while (step() > 0) continue;
  };
  const schedule = Object.assign((fn: () => void) => void queue.push(fn), { first: (fn: () => void) => void urgent.push(fn) });
  return { schedule, step, drain };
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
  it("a flow's frames of one tick leave as ONE Buffer shared by every subscriber, one queue entry each", () => {
    const { hub, sched, queue, publish } = setup();
    const qs = Array.from({ length: 5 }, () => queue("a"));
    const other = queue("b");
    publish("a");
    publish("a");
    publish("b");
    publish("a");
    // Nothing is written to the queues until the fan-out (the next check phase).
    for (const q of qs) expect(q.pendingBytes).toBe(0);
    sched.step();
    expect(hub.stats.delivered).toBe(3 * 5 + 1);
    const taken = qs.map((q) => q.take()!);
    for (const t of taken) expect(t).toHaveLength(1);
    const shared = taken[0]![0]!;
    expect(Buffer.isBuffer(shared)).toBe(true);
    for (const t of taken) expect(Object.is(t[0], shared)).toBe(true);
    expect(shared.toString()).toBe(frame("a", 1) + frame("a", 2) + frame("a", 4));
    expect(text(other.take())).toBe(frame("b", 3));
    // A frame published after the fan-out is the next batch.
    publish("a");
    sched.step();
    expect(text(qs[0]!.take())).toBe(frame("a", 5));
    sched.drain();
  });

  it("a subscriber that wants only part of a batch (narrowed, paused) gets its frames one by one, as the frame strings; a late one only what followed it", () => {
    const { sched, queue, publish } = setup();
    const full = queue("a");
    const narrowed = queue("a", { types: ["E"] });
    const paused = queue("a", { paused: true });
    publish("a");
    const late = queue("a"); // fans out the pending frame first: it is not the late one's
    publish("a", "OTHER");
    publish("a");
    sched.step();
    const whole = [...full.take()!];
    expect(whole).toHaveLength(2); // two batches: [1] and [2, 3]
    expect(text(whole)).toBe(frame("a", 1) + frame("a", 2) + frame("a", 3));
    expect(full.take()).toBeNull();
    const mine = [...narrowed.take()!];
    expect(mine).toHaveLength(2);
    expect(text(mine)).toBe(frame("a", 1) + frame("a", 3));
    // Frame by frame means the frame strings themselves (held by the replay buffer anyway), not views into the
    // batch Buffer, which would keep the whole batch alive for a subscriber holding a few of its frames.
    expect(mine.map((c) => typeof c)).toEqual(["string", "string"]);
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
    sched.step(); // the fan-out, then the first three subscribers
    publish("hot"); // arrives mid-sweep: its fan-out runs ahead of the rest of the sweep
    sched.drain();
    const texts = writes.map((w) => w.map((b) => b.toString()));
    // The first three wrote twice; the rest wrote both events at once.
    for (const i of [0, 1, 2]) expect(texts[i]).toEqual([frame("hot", 1), frame("hot", 2)]);
    for (const i of [3, 4, 5, 6, 7, 8]) expect(texts[i]).toEqual([frame("hot", 1) + frame("hot", 2)]);
  });
});

describe("the fan-out keeps the order and the limits of writing frame by frame", () => {
  it("PRESENCE and RESET written after pending frames come after them; a new subscriber gets none of them", () => {
    const { hub, sched, queue, publish } = setup();
    const q = queue("a");
    publish("a");
    hub.send("a", "event: PRESENCE\ndata: {}\n\n", "PRESENCE");
    publish("a");
    const late = queue("a");
    hub.broadcast(() => "event: RESET\ndata: {}\n\n");
    sched.drain();
    expect(text(q.take())).toBe(frame("a", 1) + "event: PRESENCE\ndata: {}\n\n" + frame("a", 2) + "event: RESET\ndata: {}\n\n");
    expect(text(late.take())).toBe("event: RESET\ndata: {}\n\n");
  });

  it("a long burst is several shared batches of at most 512 frames, in order", () => {
    const { sched, queue, publish } = setup();
    const q = queue("a");
    for (let i = 0; i < 1100; i++) publish("a");
    sched.drain();
    const chunks = [...q.take()!];
    expect(chunks.map((c) => c.length > 0 && Buffer.isBuffer(c))).toEqual([true, true, true]);
    expect(text(chunks)).toBe(Array.from({ length: 1100 }, (_, i) => frame("a", i + 1)).join(""));
  });

  it("frames of one tick over the byte limit overflow a subscriber as they would one by one; one large frame alone is taken", () => {
    const sched = manualScheduler();
    const hub = new FlowHub({ replay: new ReplayBuffer({ capacity: 100 }), schedule: sched.schedule });
    const f = (n: number) => `id: ${n}\ndata: ${"x".repeat(30)}\n\n`; // 41 bytes or so
    const size = Buffer.byteLength(f(1));
    const small = new SubscriberQueue({ maxBytes: 2 * size + 1, schedule: sched.schedule });
    const big = new SubscriberQueue({ maxBytes: 3 * size + 1, schedule: sched.schedule });
    hub.subscribe("a", small);
    hub.subscribe("a", big);
    for (let n = 1; n <= 3; n++) hub.publish({ flowId: "a", frame: f(n), token: tok(n) });
    sched.step();
    expect(small.closeReason).toBe("overflow");
    expect(big.closed).toBe(false);
    expect(hub.stats).toMatchObject({ dropped: 1, subscribers: 1 });
    expect(text(big.take())).toBe(f(1) + f(2) + f(3));
    const huge = `id: 9\ndata: ${"y".repeat(10 * size)}\n\n`;
    hub.publish({ flowId: "a", frame: huge, token: tok(9) });
    sched.step();
    expect(text(big.take())).toBe(huge);
  });

  it("a stalled narrowed subscriber keeps only the frames it counts, not the batches they came in", () => {
    const { sched, queue, publish } = setup();
    const rare = queue("a", { types: ["RARE"] });
    for (let batch = 0; batch < 20; batch++) {
      for (let i = 0; i < 50; i++) publish("a");
      publish("a", "RARE");
      sched.step();
    }
    const held = [...rare.take()!];
    expect(held).toHaveLength(20);
    // What the queue holds in memory (a Buffer pins its whole backing store) against what it counted.
    const retained = held.reduce((sum, c) => sum + (typeof c === "string" ? Buffer.byteLength(c) : c.buffer.byteLength), 0);
    expect(retained).toBe(held.reduce((sum, c) => sum + Buffer.byteLength(c), 0));
  });

  it("counts per type what every subscriber took, whole or frame by frame", () => {
    const { hub, sched, queue, publish } = setup();
    queue("a");
    queue("a");
    queue("a", { types: ["E"] });
    publish("a");
    publish("a", "OTHER");
    publish("a");
    sched.drain();
    // The narrowed subscriber is handed the OTHER frame and drops it itself, as before batches: counted as delivered.
    expect(hub.typeCounts().get("E")).toEqual({ published: 2, delivered: 6 });
    expect(hub.typeCounts().get("OTHER")).toEqual({ published: 1, delivered: 3 });
    expect(hub.stats.delivered).toBe(9);
  });
});
