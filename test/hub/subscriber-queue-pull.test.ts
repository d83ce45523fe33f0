/**
 * The promise-free pull side of SubscriberQueue (what an SSE connection uses
 * live): take() / onReadable(), and the one shared check-phase flush.
 */
import { describe, expect, it } from "vitest";
import { text } from "../support/chunks";
import { checkPhaseScheduler, SubscriberQueue } from "../../src/hub/subscriber-queue";

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("SubscriberQueue pull side", () => {
  it("take() hands out everything pending as one string, and null when empty, paused or closed", () => {
    const q = new SubscriberQueue({ maxBytes: 1 << 20 });
    expect(text(q.take())).toBeNull();
    q.write("a\n\n", "01");
    q.write("b\n\n", "02");
    expect(text(q.take())).toBe("a\n\nb\n\n");
    expect(q.pendingBytes).toBe(0);
    expect(text(q.take())).toBeNull();

    const paused = new SubscriberQueue({ maxBytes: 1 << 20, paused: true });
    paused.write("x\n\n", "01");
    expect(text(paused.take())).toBeNull();
    paused.release("00");
    expect(text(paused.take())).toBe("x\n\n");

    q.write("c\n\n", "03");
    q.close("shutdown");
    expect(text(q.take())).toBeNull();
  });

  it("onReadable() calls back once per tick however many frames arrived, and once on close", async () => {
    const q = new SubscriberQueue({ maxBytes: 1 << 20 });
    const got: Array<string | null> = [];
    let calls = 0;
    q.onReadable(() => {
      calls++;
      got.push(text(q.take()));
    });
    for (let i = 0; i < 5; i++) q.write(`e${i}\n\n`, `0${i}`);
    expect(calls).toBe(0); // deferred: the frames of this tick leave together
    await tick();
    expect(calls).toBe(1);
    expect(got).toEqual(["e0\n\ne1\n\ne2\n\ne3\n\ne4\n\n"]);
    q.close("client-gone");
    await tick();
    expect(calls).toBe(2);
    expect(q.closed).toBe(true);
  });

  it("a listener that does not take is called again only after a new write", async () => {
    const q = new SubscriberQueue({ maxBytes: 1 << 20 });
    let calls = 0;
    q.onReadable(() => calls++);
    q.write("a\n\n");
    await tick();
    await tick();
    expect(calls).toBe(1);
    q.write("b\n\n");
    await tick();
    expect(calls).toBe(2);
    expect(text(q.take())).toBe("a\n\nb\n\n");
  });

  it("checkPhaseScheduler runs callbacks in order in the next check phase, and a callback that defers again runs a tick later", async () => {
    const deferToCheckPhase = checkPhaseScheduler();
    const order: string[] = [];
    deferToCheckPhase(() => {
      order.push("a");
      deferToCheckPhase(() => order.push("c"));
    });
    deferToCheckPhase(() => order.push("b"));
    expect(order).toEqual([]);
    await tick();
    expect(order).toEqual(["a", "b"]);
    await tick();
    expect(order).toEqual(["a", "b", "c"]);
  });
});
