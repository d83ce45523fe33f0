/**
 * Chooses the test backend once per run, with the same selection as `npm start`
 * (FLOWSYNC_MONGO / MONGO_URL): a real mongod wherever one is available, else
 * the simulator. A mongod (or MONGO_URL) is shared by all files; the simulator
 * starts in milliseconds, so each test file gets its own (see ./backend.ts).
 */
import pino from "pino";
import type { TestProject } from "vitest/node";
import { openBackend, type Backend, type BackendMode } from "../../src/mongo/backend";

let shared: Backend | undefined;

export default async function setup(project: TestProject) {
  const logger = pino({ level: process.env.LOG_LEVEL ?? "warn" });
  const mode = (process.env.FLOWSYNC_MONGO ?? "auto") as BackendMode;
  shared = await openBackend({ mongoUrl: process.env.MONGO_URL, mode, logger });
  if (shared.kind === "sim") {
    await shared.stop();
    project.provide("backend", { kind: "sim" });
  } else {
    project.provide("backend", { kind: shared.kind, url: shared.url });
  }
  return async () => {
    await shared?.stop();
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    backend: { kind: "sim" } | { kind: "mongod" | "external"; url: string };
  }
}
