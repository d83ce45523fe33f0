import { describe, expect, it } from "vitest";
import { text } from "../support/chunks";
import { FlowHub } from "../../src/hub/flow-hub";
import { ReplayBuffer } from "../../src/hub/replay-buffer";
import { SubscriberQueue, type Chunk, type CloseReason, type Subscriber } from "../../src/hub/subscriber-queue";

class Recorder implements Subscriber {
  chunks: Chunk[] = [];
  closedWith: CloseReason | undefined;
  get closed() {
    return this.closedWith !== undefined;
  }
  write(chunk: Chunk) {
    this.chunks.push(chunk);
  }
  writeBatch(chunk: Buffer) {
    this.chunks.push(chunk);
    return true;
  }
  close(reason: CloseReason) {
    this.closedWith = reason;
  }
}

const hub = (capacity = 100) => new FlowHub({ replay: new ReplayBuffer({ capacity }) });
const tok = (n: number) => `82${String(n).padStart(8, "0")}`;

describe("FlowHub", () => {
  it("encodes a frame once and writes the SAME Buffer to every subscriber of the flow, nothing to others", () => {
    const h = hub();
    const flowA = Array.from({ length: 5 }, () => new Recorder());
    const flowB = new Recorder();
    flowA.forEach((s) => h.subscribe("a", s));
    h.subscribe("b", flowB);
    const frame = ["id: 1\n", "data: {}\n\n"].join(""); // built at runtime: one heap string
    h.publish({ flowId: "a", frame, token: tok(1) });
    h.flush(); // the hub fans out in the next check phase; now, here
    const first = flowA[0]!.chunks[0];
    expect(Buffer.isBuffer(first) && first.toString()).toBe(frame);
    for (const s of flowA) {
      expect(s.chunks).toHaveLength(1);
      expect(Object.is(s.chunks[0], first)).toBe(true);
    }
    expect(flowB.chunks).toEqual([]);
    expect(h.stats).toMatchObject({ flows: 2, subscribers: 6, published: 1, delivered: 5, dropped: 0 });
  });

  it("records every published frame for replay, with or without subscribers", () => {
    const h = hub();
    h.publish({ flowId: "a", frame: "f1", token: tok(1) });
    h.publish({ flowId: "b", frame: "f2", token: tok(2) });
    h.publish({ flowId: "a", frame: "f3", token: tok(3) });
    expect(h.replayAfter(tok(1), "a")?.map((e) => e.frame)).toEqual(["f3"]);
    expect(h.replay.size).toBe(3);
  });

  it("unsubscribe is idempotent and removes an empty flow", () => {
    const h = hub();
    const s = new Recorder();
    const off = h.subscribe("a", s);
    h.subscribe("a", s); // same subscriber twice counts once
    expect(h.subscriberCount()).toBe(1);
    expect(h.subscriberCount("a")).toBe(1);
    off();
    off();
    expect(h.subscriberCount()).toBe(0);
    expect(h.stats.flows).toBe(0);
    h.publish({ flowId: "a", frame: "f", token: tok(1) });
    expect(s.chunks).toEqual([]);
  });

  it("drops a slow subscriber at the byte limit and keeps serving the others", async () => {
    const h = hub();
    const slow = new SubscriberQueue({ maxBytes: 100 });
    const fast = new SubscriberQueue({ maxBytes: 100 });
    h.subscribe("a", slow);
    h.subscribe("a", fast);
    const frame = "x".repeat(40);
    h.publish({ flowId: "a", frame, token: tok(1) });
    h.flush();
    expect(text(fast.take())).toBe(frame); // the fast one reads; the slow one never does
    h.publish({ flowId: "a", frame, token: tok(2) });
    h.flush();
    expect(text(fast.take())).toBe(frame);
    h.publish({ flowId: "a", frame, token: tok(3) });
    h.flush(); // slow now holds 120 bytes > 100
    expect(slow.closeReason).toBe("overflow");
    expect(slow.pendingBytes).toBe(0);
    expect(h.subscriberCount("a")).toBe(1);
    expect(h.stats.dropped).toBe(1);
    expect(text(fast.take())).toBe(frame);
    expect(text(slow.take())).toBeNull();
  });

  it("forgets subscribers that closed on their own without counting them as dropped", () => {
    const h = hub();
    const gone = new Recorder();
    h.subscribe("a", gone);
    gone.close("client-gone");
    h.publish({ flowId: "a", frame: "f", token: tok(1) });
    h.flush();
    expect(gone.chunks).toEqual([]);
    expect(h.stats).toMatchObject({ subscribers: 0, dropped: 0 });
  });

  it("broadcast builds one frame per flow and writes it to all of the flow's subscribers", () => {
    const h = hub();
    const [a1, a2, b1] = [new Recorder(), new Recorder(), new Recorder()];
    h.subscribe("a", a1);
    h.subscribe("a", a2);
    h.subscribe("b", b1);
    const asked: string[] = [];
    h.broadcast((flowId) => (asked.push(flowId), flowId === "b" ? undefined : `event: RESET\ndata: {"flowId":"${flowId}"}\n\n`));
    expect(asked).toEqual(["a", "b"]);
    expect(a1.chunks).toEqual(['event: RESET\ndata: {"flowId":"a"}\n\n']);
    expect(Object.is(a1.chunks[0], a2.chunks[0])).toBe(true);
    expect(b1.chunks).toEqual([]);
    expect(h.replay.size).toBe(0);
  });

  it("closeAll closes every subscriber and empties the hub", () => {
    const h = hub();
    const subs = [new Recorder(), new Recorder()];
    h.subscribe("a", subs[0] as Recorder);
    h.subscribe("b", subs[1] as Recorder);
    h.closeAll("shutdown");
    expect(subs.map((s) => s.closedWith)).toEqual(["shutdown", "shutdown"]);
    expect(h.stats).toMatchObject({ flows: 0, subscribers: 0 });
  });

  it("fans out to 500 subscribers of one flow without touching 500 of another", () => {
    const h = hub();
    const mine = Array.from({ length: 500 }, () => new Recorder());
    const others = Array.from({ length: 500 }, () => new Recorder());
    mine.forEach((s) => h.subscribe("busy", s));
    others.forEach((s) => h.subscribe("quiet", s));
    for (let n = 1; n <= 10; n++) h.publish({ flowId: "busy", frame: `frame ${n}`, token: tok(n) });
    h.flush();
    const all = Array.from({ length: 10 }, (_, i) => `frame ${i + 1}`).join("");
    expect(mine.every((s) => s.chunks.length === 1 && text(s.chunks) === all)).toBe(true);
    expect(others.every((s) => s.chunks.length === 0)).toBe(true);
    expect(h.stats.delivered).toBe(5000);
  });
});

describe("FlowHub.flows (the inspector's list)", () => {
  it("lists the flows with subscribers, their counts and their last event's token and arrival; forgets a flow with its last subscriber", () => {
    let clock = 1_000;
    const h = new FlowHub({ replay: new ReplayBuffer({ capacity: 10 }), now: () => clock });
    const a1 = new Recorder();
    const offA1 = h.subscribe("a", a1);
    const offA2 = h.subscribe("a", new Recorder());
    h.subscribe("b", new Recorder());
    h.publish({ flowId: "nobody", frame: "f0", token: tok(1) });
    h.publish({ flowId: "a", frame: "f1", token: tok(2) });
    clock = 2_000;
    h.publish({ flowId: "a", frame: "f2", token: tok(3) });
    const byId = (list: ReturnType<FlowHub["flows"]>) => [...list].sort((x, y) => x.flowId.localeCompare(y.flowId));
    expect(byId(h.flows())).toEqual([
      { flowId: "a", subscribers: 2, lastToken: tok(3), lastEventAt: 2_000 },
      { flowId: "b", subscribers: 1 },
    ]);
    // A copy: changing it changes nothing in the hub.
    h.flows()[0]!.subscribers = 99;
    expect(byId(h.flows())[0]!.subscribers).toBe(2);
    offA1();
    offA2();
    expect(h.flows()).toEqual([{ flowId: "b", subscribers: 1 }]);
    // Subscribed again: the old last event is not remembered.
    h.subscribe("a", new Recorder());
    expect(byId(h.flows())[0]).toEqual({ flowId: "a", subscribers: 1 });
    h.closeAll("shutdown");
    expect(h.flows()).toEqual([]);
  });
});
