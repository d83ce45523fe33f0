/**
 * Soak: MongoDB out of reach for 30 s (connections refused), then back — the
 * same scenario as test/integration/outage.test.ts, held as long as the issue asks.
 */
import { afterAll, beforeAll, describe, it } from "vitest";
import { startTestBackend, type TestBackend } from "../support/backend";
import { outageScenario } from "../support/outage";

let backend: TestBackend;
beforeAll(async () => {
  backend = await startTestBackend();
});
afterAll(async () => backend?.stop());

describe("soak: MongoDB unreachable for 30 s", () => {
  it("connections refused for 30 s: nothing lost, not ready meanwhile, subscribers stay connected with heartbeats", async () => {
    const figures = await outageScenario(backend, "refuse", 30_000);
    console.log("outage:", JSON.stringify(figures));
  }, 120_000);
});
