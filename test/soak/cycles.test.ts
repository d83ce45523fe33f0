/** Soak: 10,000 connect/disconnect cycles leave nothing behind (test/support/cycles.ts). */
import { describe, it } from "vitest";
import { useBackend } from "../support/backend";
import { cycleScenario } from "../support/cycles";

const h = useBackend();

describe("soak: connect/disconnect cycles", () => {
  it("10,000 cycles (some resuming, events flowing) leave no growth in sockets, descriptors, timers, listeners or heap", async () => {
    const figures = await cycleScenario(h.backend, 10_000);
    console.log("cycles:", JSON.stringify(figures));
  }, 600_000);
});
