/**
 * The MongoDB a test talks to: a fresh simulator per call, or the run's shared
 * mongod. Tests isolate themselves with their own database names (uniqueDb).
 */
import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { startSimulator, type SimulatorOptions } from "../../src/mongo/sim";

export interface TestBackend {
  kind: "sim" | "mongod" | "external";
  url: string;
  /** The simulator, when that is the backend (for tests of simulator-only knobs). */
  sim?: Awaited<ReturnType<typeof startSimulator>>;
  stop(): Promise<void>;
}

export async function startTestBackend(simOptions: SimulatorOptions = {}): Promise<TestBackend> {
  const chosen = inject("backend");
  if (chosen.kind !== "sim") return { kind: chosen.kind, url: chosen.url, stop: async () => {} };
  const sim = await startSimulator(simOptions);
  return { kind: "sim", url: sim.url, sim, stop: () => sim.close() };
}

export function uniqueDb(prefix = "t"): string {
  return `${prefix}_${randomBytes(4).toString("hex")}`;
}
