/** Starts flowsync instances in-process against the test backend. */
import type { Db, MongoClient } from "mongodb";
import pino, { type Logger } from "pino";
import { afterAll, beforeAll } from "vitest";
import { loadConfig, type Env } from "../../src/config";
import { startFlowsync, type Flowsync } from "../../src/flowsync";
import { uniqueDb, useBackend, type Harness, type TestBackend } from "./backend";
import { SseClient } from "./sse-client";

export async function startTestFlowsync(mongoUrl: string, env: Partial<Record<keyof Env, string>> = {}, options: { logger?: Logger } = {}): Promise<Flowsync> {
  const config = loadConfig({ MONGO_URL: mongoUrl, PORT: "0", HOST: "127.0.0.1", FILTERS_DIR: "./filters", CHANGE_STREAM_AWAIT_MS: "100", ...env });
  const logger = options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  return startFlowsync(config, logger);
}

export function subscribeUrl(fs: Flowsync, flowId: string, query = ""): string {
  return `${fs.url}/api/creative-flowboard/subscribe/${encodeURIComponent(flowId)}${query}`;
}

/** A subscriber of `flowId` (from `lastEventId`, if given), once its subscription is in place. */
export async function connected(fs: Flowsync, flowId: string, lastEventId?: string): Promise<SseClient> {
  const c = new SseClient(subscribeUrl(fs, flowId), { lastEventId });
  await c.opened();
  return c;
}

export interface FlowsyncFixture {
  backend: TestBackend;
  fs: Flowsync;
  /** An independent client, writing as an outside tool would. */
  writer: MongoClient;
  /** The watched database, through `writer`. */
  db: Db;
}

export interface FlowsyncFixtureOptions {
  /** A backend the file already has (`useBackend()`); else one of its own. */
  backend?: Harness;
  /** The URL flowsync connects with, from the backend's (an appName, a proxy). */
  url?: (backendUrl: string) => string;
  logger?: Logger;
}

/**
 * Registers beforeAll/afterAll for one test file (or describe block): a backend,
 * a flowsync watching a fresh database, and an independent writer. The fields
 * are set once beforeAll ran.
 */
export function useFlowsync(dbPrefix: string, env: Partial<Record<keyof Env, string>> = {}, options: FlowsyncFixtureOptions = {}): FlowsyncFixture {
  const h = options.backend ?? useBackend();
  const f = {} as FlowsyncFixture;
  beforeAll(async () => {
    const dbName = uniqueDb(dbPrefix);
    f.backend = h.backend;
    f.writer = h.client;
    f.db = h.client.db(dbName);
    f.fs = await startTestFlowsync(options.url ? options.url(h.backend.url) : h.backend.url, { MONGO_DB: dbName, ...env }, { logger: options.logger });
  });
  afterAll(async () => {
    await f.fs?.stop();
  });
  return f;
}
