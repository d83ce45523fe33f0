/**
 * flowsync's configuration: the environment, validated once, then frozen.
 * `src/main.ts` is the only caller with the real `process.env`; tests pass a record.
 */
import { z } from "zod";
import { FlowsyncError } from "./errors";
import type { LogFormat } from "./log";

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");

/** Variable → schema. Each has a line in HELP below and a row in docs/configuration.md (test/config.test.ts). */
const schema = z.object({
  MONGO_URL: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, "must start with mongodb:// or mongodb+srv://")
    .optional(),
  MONGO_DB: z
    .string()
    .min(1)
    .regex(/^[^/\\. "$]+$/, "not a valid database name")
    .default("flowboard"),
  FLOWSYNC_MONGO: z.enum(["auto", "mongod", "sim"]).default("auto"),
  PORT: int(0, 65535).default(3000),
  HOST: z.string().min(1).default("127.0.0.1"),
  FILTERS_DIR: z.string().min(1).default("./filters"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  LOG_FORMAT: z.enum(["json", "pretty"]).optional(),
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
  MONGO_MONITOR_STUCK_MS: int(1000).optional(),
  SIM_OPLOG_SIZE: int(1).default(100_000),
  // Not prom-client's 10 ms: each sample wakes the process, which costs more than a small fan-out's deliveries (docs/configuration.md).
  METRICS_EVENT_LOOP_MS: int(1, 60_000).default(100),
  // Limits (src/http/limits.ts); 0 = no limit.
  MAX_SUBSCRIBERS: int(0).default(50_000),
  MAX_SUBSCRIBERS_PER_FLOW: int(0).default(0),
  MAX_STREAMS_PER_IP: int(0).default(0),
  RETRY_AFTER_S: int(1, 3600).default(5),
  TRUST_PROXY: bool.default(false),
  // Access control (src/http/auth.ts): on when a key is set.
  AUTH_JWT_SECRET: z.string().min(32, "must be at least 32 characters (HS256 needs a 256-bit key)").optional(),
  AUTH_JWKS_FILE: z.string().min(1).optional(),
  AUTH_JWKS_URL: z.url({ protocol: /^https?$/ }).optional(),
  AUTH_ISSUER: z.string().min(1).optional(),
  AUTH_AUDIENCE: z.string().min(1).optional(),
  AUTH_FLOWS_CLAIM: z.string().min(1).default("flows"),
  AUTH_ADMIN_CLAIM: z.string().min(1).default("flowsync_admin"),
  AUTH_COOKIE: z
    .string()
    .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, "not a valid cookie name")
    .default("flowsync_token"),
  AUTH_QUERY_TOKEN: bool.default(true),
  AUTH_CLOCK_TOLERANCE_S: int(0, 300).default(5),
  // Presence (src/hub/presence.ts, docs/presence.md): off unless asked for; then flowsync writes to one collection.
  PRESENCE: z
    .enum(["on", "off", "true", "false", "1", "0"])
    .transform((v) => v === "on" || v === "true" || v === "1")
    .default(false),
  PRESENCE_COLLECTION: z
    .string()
    .regex(/^[^$\u0000]+$/, "not a valid collection name")
    .refine((v) => !v.startsWith("system."), "must not start with system.")
    .default("flowsync_presence"),
  // ≥ 3 s: entries are refreshed every TTL/3, and no flow may be written more than once a second.
  PRESENCE_TTL_MS: int(3000, 3_600_000).default(30_000),
  PRESENCE_CLAIMS: z
    .string()
    .transform((v) => [
      ...new Set(
        v
          .split(",")
          .map((c) => c.trim())
          .filter((c) => c !== ""),
      ),
    ])
    .pipe(
      z.array(
        z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/, "each claim must be a name like color")
          .refine((c) => c !== "id" && c !== "connections", "id and connections are not claims"),
      ),
    )
    .default([]),
  CORS_ORIGINS: z
    .string()
    .transform((v) =>
      v
        .split(",")
        .map((o) => o.trim())
        .filter((o) => o !== ""),
    )
    .pipe(z.array(z.string().regex(/^(\*|https?:\/\/[^/\s,]+)$/, "each origin must be '*' or like https://app.example.com")))
    .default([]),
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
  /** undefined: pretty on a terminal, json otherwise (src/log.ts). */
  logFormat: LogFormat | undefined;
  basePath: string;
  replayBufferSize: number;
  clientBufferBytes: number;
  heartbeatMs: number;
  retryMs: number;
  catchUpConcurrency: number;
  flowIdCacheSize: number;
  changeStreamAwaitMs: number;
  shutdownGraceMs: number;
  /** A driver heartbeat open this long means a wedged monitor (src/mongo/client-health.ts); undefined = derived. */
  monitorStuckMs: number | undefined;
  simOplogSize: number;
  /** How often the event-loop delay behind `nodejs_eventloop_lag_*` is sampled (prom-client's eventLoopMonitoringPrecision). */
  metricsEventLoopMs: number;
  maxSubscribers: number;
  maxSubscribersPerFlow: number;
  maxStreamsPerIp: number;
  retryAfterS: number;
  trustProxy: boolean;
  auth: {
    secret: string | undefined;
    jwksFile: string | undefined;
    jwksUrl: string | undefined;
    issuer: string | undefined;
    audience: string | undefined;
    claim: string;
    adminClaim: string;
    cookie: string;
    queryToken: boolean;
    clockToleranceS: number;
  };
  corsOrigins: readonly string[];
  presence: {
    enabled: boolean;
    collection: string;
    ttlMs: number;
    /** Token claims shown in the presence list besides `sub` (the id): `name` and PRESENCE_CLAIMS. */
    claims: readonly string[];
  };
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
    logFormat: e.LOG_FORMAT,
    basePath: e.BASE_PATH,
    replayBufferSize: e.REPLAY_BUFFER_SIZE,
    clientBufferBytes: e.CLIENT_BUFFER_BYTES,
    heartbeatMs: e.HEARTBEAT_MS,
    retryMs: e.RETRY_MS,
    catchUpConcurrency: e.CATCHUP_CONCURRENCY,
    flowIdCacheSize: e.FLOW_ID_CACHE_SIZE,
    changeStreamAwaitMs: e.CHANGE_STREAM_AWAIT_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    monitorStuckMs: e.MONGO_MONITOR_STUCK_MS,
    simOplogSize: e.SIM_OPLOG_SIZE,
    metricsEventLoopMs: e.METRICS_EVENT_LOOP_MS,
    maxSubscribers: e.MAX_SUBSCRIBERS,
    maxSubscribersPerFlow: e.MAX_SUBSCRIBERS_PER_FLOW,
    maxStreamsPerIp: e.MAX_STREAMS_PER_IP,
    retryAfterS: e.RETRY_AFTER_S,
    trustProxy: e.TRUST_PROXY,
    auth: Object.freeze({
      secret: e.AUTH_JWT_SECRET,
      jwksFile: e.AUTH_JWKS_FILE,
      jwksUrl: e.AUTH_JWKS_URL,
      issuer: e.AUTH_ISSUER,
      audience: e.AUTH_AUDIENCE,
      claim: e.AUTH_FLOWS_CLAIM,
      adminClaim: e.AUTH_ADMIN_CLAIM,
      cookie: e.AUTH_COOKIE,
      queryToken: e.AUTH_QUERY_TOKEN,
      clockToleranceS: e.AUTH_CLOCK_TOLERANCE_S,
    }),
    corsOrigins: Object.freeze([...e.CORS_ORIGINS]),
    presence: Object.freeze({
      enabled: e.PRESENCE,
      collection: e.PRESENCE_COLLECTION,
      ttlMs: e.PRESENCE_TTL_MS,
      // `name` is always shown; the list adds to it.
      claims: Object.freeze([...new Set(["name", ...e.PRESENCE_CLAIMS])]),
    }),
  });
}

/** What `--help` says of each variable; the full table, with accepted values, is docs/configuration.md. */
const HELP: { readonly [K in keyof typeof schema.shape]: string } = {
  MONGO_URL: "MongoDB connection string (replica set or sharded cluster); unset: embedded backend",
  MONGO_DB: "database to watch",
  FLOWSYNC_MONGO: "embedded backend when MONGO_URL is unset: auto | mongod | sim",
  PORT: "HTTP port (0: any free port)",
  HOST: "interface to listen on (0.0.0.0 in containers)",
  FILTERS_DIR: "directory of filter modules",
  LOG_LEVEL: "fatal | error | warn | info | debug | trace | silent",
  LOG_FORMAT: "json | pretty (default: pretty on a terminal, json otherwise)",
  BASE_PATH: "prefix of the subscribe and snapshot routes",
  REPLAY_BUFFER_SIZE: "events kept in memory for reconnects (all flows)",
  CLIENT_BUFFER_BYTES: "unsent bytes after which a slow subscriber is disconnected",
  HEARTBEAT_MS: "heartbeat comment interval",
  RETRY_MS: "retry: hint sent to browsers",
  CATCHUP_CONCURRENCY: "catch-up change streams running at once",
  FLOW_ID_CACHE_SIZE: "id → flowId entries kept to route deletes without pre-images",
  CHANGE_STREAM_AWAIT_MS: "maxAwaitTimeMS of the watcher's getMore",
  SHUTDOWN_GRACE_MS: "how long shutdown waits for connections to close",
  MONGO_MONITOR_STUCK_MS: "a driver heartbeat open this long counts as a wedged monitor (default: derived)",
  SIM_OPLOG_SIZE: "oplog entries the embedded simulator keeps",
  METRICS_EVENT_LOOP_MS: "sampling interval of the event-loop delay in nodejs_eventloop_lag_* (each sample includes it)",
  MAX_SUBSCRIBERS: "subscribers per process (0: no limit)",
  MAX_SUBSCRIBERS_PER_FLOW: "subscribers of one flow per process (0: no limit)",
  MAX_STREAMS_PER_IP: "open streams per client address (0: no limit)",
  RETRY_AFTER_S: "Retry-After of the 429/503 answers",
  TRUST_PROXY: "take the client address from X-Forwarded-For",
  AUTH_JWT_SECRET: "HS256 key (≥ 32 characters); any AUTH_JWT_SECRET/AUTH_JWKS_* turns auth on",
  AUTH_JWKS_FILE: "JWKS file of RS256/ES256 public keys",
  AUTH_JWKS_URL: "JWKS URL of RS256/ES256 public keys",
  AUTH_ISSUER: "required iss of tokens",
  AUTH_AUDIENCE: "required aud of tokens",
  AUTH_FLOWS_CLAIM: "claim naming the readable flows",
  AUTH_ADMIN_CLAIM: "claim that must be true to list this instance's flows (GET …/flows)",
  AUTH_COOKIE: "cookie that may carry the token",
  AUTH_QUERY_TOKEN: "accept ?access_token= (EventSource cannot set headers)",
  AUTH_CLOCK_TOLERANCE_S: "clock skew allowed on exp/nbf",
  CORS_ORIGINS: "allowed origins, comma-separated (https://app.example.com, or *)",
  PRESENCE: "on | off: list who is on each flow, across instances (writes PRESENCE_COLLECTION)",
  PRESENCE_COLLECTION: "collection of the presence documents, in MONGO_DB",
  PRESENCE_TTL_MS: "an instance's presence entries count as gone when not refreshed this long",
  PRESENCE_CLAIMS: "token claims shown on the presence list besides sub and name, comma-separated",
};

export const CONFIG_VARIABLES = Object.keys(HELP) as readonly (keyof typeof HELP)[];

/** The variables, their defaults and meanings, as `--help` prints them. */
export function configHelp(): string {
  const rows: (readonly [string, string, string])[] = [["variable", "default", "meaning"]];
  for (const name of CONFIG_VARIABLES) {
    const fallback = schema.shape[name].safeParse(undefined);
    const value = fallback.success ? fallback.data : undefined;
    const shown = value === undefined || (Array.isArray(value) && value.length === 0) ? "—" : String(value);
    rows.push([name, shown, HELP[name]]);
  }
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  return rows.map(([n, d, h]) => `${n.padEnd(w0)}  ${d.padEnd(w1)}  ${h}`).join("\n");
}
