/**
 * Which MongoDB flowsync talks to. One small decision, shared by `npm start`,
 * the tests and the scripts:
 *
 *   MONGO_URL given        → that deployment (must be a replica set or sharded cluster)
 *   FLOWSYNC_MONGO=mongod  → an embedded mongod (mongodb-memory-server, one-member replica set)
 *   FLOWSYNC_MONGO=sim     → the built-in wire-protocol simulator (offline; never production)
 *   FLOWSYNC_MONGO=auto    → embedded mongod if one can be had, else the simulator, with a warning
 *
 * This module reads no environment itself: the caller passes what it read.
 */
import { MongoClient } from "mongodb";
import type { Logger } from "pino";
import { FlowsyncError, isFlowsyncError } from "../errors";
import { startSimulator, type SimulatorOptions } from "./sim";

export type BackendMode = "auto" | "mongod" | "sim";
export type BackendKind = "external" | "mongod" | "sim";

export interface Backend {
  kind: BackendKind;
  url: string;
  /** Stops what this module started; a no-op for an external deployment. */
  stop(): Promise<void>;
}

export interface BackendOptions {
  mongoUrl?: string;
  mode?: BackendMode;
  logger: Logger;
  /** Options for the simulator, when it is the one chosen. */
  sim?: SimulatorOptions;
}

export const STANDALONE_FIX =
  "change streams need a replica set: start mongod with `--replSet rs0` and run `rs.initiate()` once (e.g. mongosh --eval 'rs.initiate()'), then use ?replicaSet=rs0 in MONGO_URL";

export async function openBackend(opts: BackendOptions): Promise<Backend> {
  const { logger } = opts;
  const mode = opts.mode ?? "auto";
  if (opts.mongoUrl) {
    await assertChangeStreamsPossible(opts.mongoUrl);
    logger.info({ backend: "external", url: redact(opts.mongoUrl) }, "using MongoDB from MONGO_URL");
    return { kind: "external", url: opts.mongoUrl, stop: async () => {} };
  }
  if (mode === "sim") return simulator(opts);
  try {
    return await embeddedMongod(logger);
  } catch (err) {
    if (mode === "mongod")
      throw new FlowsyncError("E_MONGO_UNUSABLE", `FLOWSYNC_MONGO=mongod but no mongod could be started: ${(err as Error).message}`, { cause: err });
    logger.warn(
      { backend: "sim", reason: (err as Error).message.split("\n")[0] },
      "no mongod binary available (and it could not be downloaded): using the built-in MongoDB simulator, which is for development and tests only. For a real mongod set MONGOMS_SYSTEM_BINARY=/path/to/mongod, or MONGO_URL to a replica set",
    );
    return simulator(opts);
  }
}

async function simulator(opts: BackendOptions): Promise<Backend> {
  const sim = await startSimulator({ ...opts.sim, logger: opts.logger.child({ component: "mongo-sim" }) });
  opts.logger.info({ backend: "sim", url: sim.url }, "using the built-in MongoDB simulator");
  return { kind: "sim", url: sim.url, stop: () => sim.close() };
}

async function embeddedMongod(logger: Logger): Promise<Backend> {
  // Loaded lazily: it is a large module and most runs here never need it.
  const { MongoBinary, MongoMemoryReplSet } = await import("mongodb-memory-server");
  // Resolve the binary first (cache, MONGOMS_SYSTEM_BINARY, or download): it fails quietly,
  // where a failed replica-set start prints a stack trace of its own.
  const binary = await MongoBinary.getPath();
  const rs = await MongoMemoryReplSet.create({
    binary: { systemBinary: binary },
    replSet: { count: 1, storageEngine: "wiredTiger", args: ["--setParameter", "enableTestCommands=1"] },
  });
  const url = rs.getUri();
  logger.info({ backend: "mongod", url }, "using an embedded mongod (mongodb-memory-server)");
  return { kind: "mongod", url, stop: async () => void (await rs.stop()) };
}

/** Fails with the one-line fix when the deployment cannot run change streams. */
async function assertChangeStreamsPossible(url: string): Promise<void> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 });
  try {
    const hello = await client.db("admin").command({ hello: 1 });
    if (!hello.setName && hello.msg !== "isdbgrid") {
      throw new FlowsyncError("E_MONGO_UNUSABLE", `MONGO_URL (${redact(url)}) is a standalone MongoDB server; ${STANDALONE_FIX}`);
    }
  } catch (err) {
    if (isFlowsyncError(err, "E_MONGO_UNUSABLE")) throw err;
    throw new FlowsyncError("E_MONGO_UNUSABLE", `cannot reach MongoDB at ${redact(url)}: ${(err as Error).message}`, { cause: err });
  } finally {
    await client.close();
  }
}

/** Connection strings may carry passwords; logs must not. */
export function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, "//***@");
}
