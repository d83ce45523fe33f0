/**
 * flowsync's configuration: the environment, validated once, then frozen.
 * `src/main.ts` is the only caller with the real `process.env`; tests pass a record.
 */
import { z } from "zod";
import { FlowsyncError } from "./errors";

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

/** Variable → [schema, one-line description for the README table]. */
const schema = z.object({
  MONGO_URL: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, "must start with mongodb:// or mongodb+srv://")
    .optional(),
  MONGO_DB: z.string().min(1).regex(/^[^/\\. "$]+$/, "not a valid database name").default("flowboard"),
  FLOWSYNC_MONGO: z.enum(["auto", "mongod", "sim"]).default("auto"),
  PORT: int(0, 65535).default(3000),
  HOST: z.string().min(1).default("127.0.0.1"),
  FILTERS_DIR: z.string().min(1).default("./filters"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  BASE_PATH: z
    .string()
    .regex(/^(\/[A-Za-z0-9._~-]+)*$/, "must be empty or like /api/creative-flowboard")
    .default("/api/creative-flowboard"),
  REPLAY_BUFFER_SIZE: int(1).default(10_000),
  CLIENT_BUFFER_BYTES: int(1024).default(1024 * 1024),
  HEARTBEAT_MS: int(1000).default(15_000),
  RETRY_MS: int(0).default(2000),
  CATCHUP_CONCURRENCY: int(1).default(4),
  FLOW_ID_CACHE_SIZE: int(1).default(100_000),
  CHANGE_STREAM_AWAIT_MS: int(10, 60_000).default(1000),
  SHUTDOWN_GRACE_MS: int(0).default(5000),
  SIM_OPLOG_SIZE: int(1).default(100_000),
});

export type Env = z.input<typeof schema>;

export interface Config {
  mongoUrl: string | undefined;
  mongoDb: string;
  backendMode: "auto" | "mongod" | "sim";
  port: number;
  host: string;
  filtersDir: string;
  logLevel: z.output<typeof schema>["LOG_LEVEL"];
  basePath: string;
  replayBufferSize: number;
  clientBufferBytes: number;
  heartbeatMs: number;
  retryMs: number;
  catchUpConcurrency: number;
  flowIdCacheSize: number;
  changeStreamAwaitMs: number;
  shutdownGraceMs: number;
  simOplogSize: number;
}

/** Parses the environment; throws E_CONFIG_INVALID naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Readonly<Config> {
  // Empty strings mean "unset", as in most shells' `VAR= cmd`.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new FlowsyncError("E_CONFIG_INVALID", `invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  return Object.freeze({
    mongoUrl: e.MONGO_URL,
    mongoDb: e.MONGO_DB,
    backendMode: e.FLOWSYNC_MONGO,
    port: e.PORT,
    host: e.HOST,
    filtersDir: e.FILTERS_DIR,
    logLevel: e.LOG_LEVEL,
    basePath: e.BASE_PATH,
    replayBufferSize: e.REPLAY_BUFFER_SIZE,
    clientBufferBytes: e.CLIENT_BUFFER_BYTES,
    heartbeatMs: e.HEARTBEAT_MS,
    retryMs: e.RETRY_MS,
    catchUpConcurrency: e.CATCHUP_CONCURRENCY,
    flowIdCacheSize: e.FLOW_ID_CACHE_SIZE,
    changeStreamAwaitMs: e.CHANGE_STREAM_AWAIT_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    simOplogSize: e.SIM_OPLOG_SIZE,
  });
}
