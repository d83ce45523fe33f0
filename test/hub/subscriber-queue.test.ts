import { describe, expect, it } from "vitest";
import { text } from "../support/chunks";
import { SubscriberQueue } from "../../src/hub/subscriber-queue";

// A manual scheduler: wake-ups run when the test says the tick is over.
function manual() {
  const tasks: (() => void)[] = [];
  return {
    schedule: (fn: () => void) => void tasks.push(fn),
    tick: () => tasks.splice(0).forEach((fn) => fn()),
  };
}

describe("SubscriberQueue", () => {
  it("hands everything pending over as one chunk", async () => {
    const queue = new SubscriberQueue({ maxBytes: 1000 });
    queue.write("a\n\n");
    queue.write("b\n\n");
    expect(queue.pendingBytes).toBe(6);
    expect(text(queue.take())).toBe("a\n\nb\n\n");
    expect(queue.pendingBytes).toBe(0);
  });

  it("coalesces the writes of one tick into one wake-up of its reader", () => {
    const clock = manual();
    const queue = new SubscriberQueue({ maxBytes: 1000, schedule: clock.schedule });
    const chunks: Array<string | null> = [];
    queue.onReadable(() => chunks.push(text(queue.take())));
    queue.write("1");
    queue.write("2");
    queue.write("3");
    expect(chunks).toEqual([]);
    clock.tick();
    expect(chunks).toEqual(["123"]);
  });

  it("wakes its reader on the default scheduler", async () => {
    const queue = new SubscriberQueue({ maxBytes: 1000 });
    const chunk = new Promise<string | null>((resolve) => queue.onReadable(() => resolve(text(queue.take()))));
    queue.write("x");
    expect(await chunk).toBe("x");
  });

  it("closes itself with 'overflow' when unsent bytes exceed the limit, and frees them", async () => {
    const queue = new SubscriberQueue({ maxBytes: 10 });
    queue.write("12345");
    queue.write("67890");
    expect(queue.closed).toBe(false);
    queue.write("x");
    expect(queue.closed).toBe(true);
    expect(queue.closeReason).toBe("overflow");
    expect(queue.pendingBytes).toBe(0);
    expect(text(queue.take())).toBeNull();
    queue.write("ignored");
    expect(queue.pendingBytes).toBe(0);
  });

  it("takes one frame larger than the limit when nothing is pending, and overflows when another comes before it is taken", async () => {
    const queue = new SubscriberQueue({ maxBytes: 10 });
    queue.write("a".repeat(50));
    expect(queue.closed).toBe(false);
    expect(text(queue.take())).toBe("a".repeat(50));
    queue.write("b".repeat(50));
    expect(queue.closed).toBe(false);
    queue.write("c");
    expect(queue.closeReason).toBe("overflow");
  });

  it("a heartbeat behind a frame larger than the limit is dropped, not counted: a subscriber keeping up stays", () => {
    const queue = new SubscriberQueue({ maxBytes: 64 * 1024 });
    const big = "x".repeat(120_000);
    queue.write(big, "t1");
    queue.writeIdle(":\n\n");
    expect(queue.closed).toBe(false);
    expect(text(queue.take())).toBe(big);
    queue.writeIdle(":\n\n"); // idle again: the heartbeat is written
    expect(text(queue.take())).toBe(":\n\n");
    // A real event behind the big frame still overflows, as before.
    queue.write(big, "t2");
    queue.write("y", "t3");
    expect(queue.closeReason).toBe("overflow");
  });

  it("counts UTF-8 bytes, not characters", () => {
    const queue = new SubscriberQueue({ maxBytes: 5 });
    queue.write("éé"); // 4 bytes
    expect(queue.pendingBytes).toBe(4);
    queue.write("é");
    expect(queue.closeReason).toBe("overflow");
  });

  it("paused: collects live frames, then release(lastToken) drops those at or before it", async () => {
    const clock = manual();
    const queue = new SubscriberQueue({ maxBytes: 1000, paused: true, schedule: clock.schedule });
    const chunks: Array<string | null> = [];
    queue.onReadable(() => chunks.push(text(queue.take())));
    queue.write("live1 ", "8201");
    queue.write("live2 ", "8202");
    queue.write("live3 ", "8203");
    queue.write(": heartbeat\n");
    clock.tick();
    expect(chunks).toEqual([]); // paused: nothing is handed out
    // The catch-up delivered everything up to 8202 meanwhile.
    queue.release("8202");
    clock.tick();
    expect(chunks).toEqual(["live3 : heartbeat\n"]);
    // The main stream may still deliver events the catch-up already sent: ignored.
    queue.write("late dup ", "8202");
    queue.write("live4 ", "8204");
    clock.tick();
    expect(chunks).toEqual(["live3 : heartbeat\n", "live4 "]);
  });

  it("paused frames count towards the limit (a long catch-up cannot grow memory)", () => {
    const queue = new SubscriberQueue({ maxBytes: 8, paused: true });
    queue.write("12345", "8201");
    queue.write("67890", "8202");
    expect(queue.closeReason).toBe("overflow");
  });

  it("refuses a limit below 1 byte", () => {
    expect(() => new SubscriberQueue({ maxBytes: 0 })).toThrow(expect.objectContaining({ code: "E_INTERNAL" }));
  });
});
