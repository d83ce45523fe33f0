/**
 * Connect/disconnect cycles leave nothing behind (test/support/cycles.ts):
 * 500 here; `npm run test:soak` runs 10,000.
 */
import { describe, it } from "vitest";
import { useBackend } from "../support/backend";
import { cycleScenario } from "../support/cycles";

const h = useBackend();

describe("connect/disconnect cycles", () => {
  it("500 cycles (some resuming, events flowing) leave no growth in sockets, descriptors, timers, listeners or heap", async () => {
    const figures = await cycleScenario(h.backend, 500);
    console.log("cycles:", JSON.stringify(figures));
  }, 120_000);
});
