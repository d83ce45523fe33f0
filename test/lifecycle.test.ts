import { describe, expect, it } from "vitest";
import { stopList } from "../src/lifecycle";

describe("stopList", () => {
  it("stops in reverse order of start, each awaited, once however often it is asked", async () => {
    const order: string[] = [];
    const list = stopList();
    for (const name of ["backend", "client", "watcher", "http"]) {
      list.push(async () => {
        await Promise.resolve();
        order.push(name);
      });
    }
    await Promise.all([list.stopAll(), list.stopAll()]);
    await list.stopAll();
    expect(order).toEqual(["http", "watcher", "client", "backend"]);
  });

  it("runs every stop although one fails, then throws the first failure", async () => {
    const order: string[] = [];
    const list = stopList();
    list.push(() => order.push("backend"));
    list.push(() => {
      throw new Error("client close failed");
    });
    list.push(() => Promise.reject(new Error("watcher close failed")));
    await expect(list.stopAll()).rejects.toThrow("watcher close failed");
    expect(order).toEqual(["backend"]);
  });
});
