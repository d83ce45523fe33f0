/**
 * The MongoDB a test talks to: a fresh simulator per call, or the run's shared
 * mongod. Tests isolate themselves with their own database names (uniqueDb).
 */
import { randomBytes } from "node:crypto";
import { MongoClient, type MongoClientOptions } from "mongodb";
import { afterAll, beforeAll, inject } from "vitest";
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

export interface Harness {
  backend: TestBackend;
  /** A client of the test's own, writing and asking the server as an outside tool would. */
  client: MongoClient;
  /** This client's appName: fail points are filtered on it so they never hit another file's client. */
  appName: string;
  /** A further client on the same backend (closed in afterAll). */
  newClient(options?: MongoClientOptions): Promise<MongoClient>;
}

/**
 * Registers beforeAll/afterAll: a backend and one connected client for the file
 * (or the describe block it is called in); stops both afterwards.
 * The returned object is filled in by `beforeAll`.
 */
export function useBackend(simOptions: SimulatorOptions = {}, clientOptions: MongoClientOptions = {}): Harness {
  const extra: MongoClient[] = [];
  const h = { appName: `t-${randomBytes(4).toString("hex")}` } as Harness;
  beforeAll(async () => {
    h.backend = await startTestBackend(simOptions);
    h.newClient = async (options = {}) => {
      const c = new MongoClient(h.backend.url, { appName: h.appName, serverSelectionTimeoutMS: 5_000, ...options });
      extra.push(c);
      await c.connect();
      return c;
    };
    h.client = await h.newClient(clientOptions);
  });
  afterAll(async () => {
    await Promise.all(extra.map((c) => c.close()));
    await h.backend?.stop();
  });
  return h;
}
