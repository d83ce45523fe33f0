/**
 * Soak: MongoDB out of reach for 30 s (connections refused), then back — the
 * same scenario as test/integration/outage.test.ts, held as long as the issue asks.
 */
import { describe, it } from "vitest";
import { useBackend } from "../support/backend";
import { outageScenario } from "../support/outage";

const h = useBackend();

describe("soak: MongoDB unreachable for 30 s", () => {
  it("connections refused for 30 s: nothing lost, not ready meanwhile, subscribers stay connected with heartbeats", async () => {
    const figures = await outageScenario(h.backend, "refuse", 30_000);
    console.log("outage:", JSON.stringify(figures));
  }, 120_000);
});
