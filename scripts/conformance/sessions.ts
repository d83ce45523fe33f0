// Session entities and their operations (spec "session" entity, "Session
// Operations"; transactions spec "Test runner"): startTransaction,
// commitTransaction, abortTransaction, endSession, and the testRunner
// assertions about a session.
import type { ClientSession, ClientSessionOptions, Document, MongoClient, TransactionOptions } from "mongodb";
import { toReadPreference } from "./entities.js";
import { AssertionFailure, TestFileError, UnimplementedError } from "./errors.js";
import type { OperationDef } from "./operations.js";

export interface SessionEntity {
  kind: "session";
  session: ClientSession;
  /** Saved at creation: the spec wants `$$sessionLsid` to work after endSession too. */
  lsid: Document;
  client: MongoClient;
}

const SESSION_OPTIONS = ["causalConsistency", "defaultTransactionOptions", "snapshot"];
const TRANSACTION_OPTIONS = ["readConcern", "writeConcern", "readPreference", "maxCommitTimeMS"];

/** Spec transaction options → the driver's TransactionOptions. */
export function transactionOptions(raw: unknown, where: string): TransactionOptions {
  const opts = (raw ?? {}) as Record<string, unknown>;
  const out: TransactionOptions = {};
  for (const [key, value] of Object.entries(opts)) {
    if (!TRANSACTION_OPTIONS.includes(key)) throw new UnimplementedError(`${where}.${key}`);
    if (key === "readPreference") out.readPreference = toReadPreference(value);
    else (out as Record<string, unknown>)[key] = value;
  }
  return out;
}

export function createSession(spec: Record<string, unknown>, client: MongoClient): SessionEntity {
  for (const key of Object.keys(spec)) if (!["id", "client", "sessionOptions"].includes(key)) throw new UnimplementedError(`session.${key}`);
  const raw = (spec.sessionOptions ?? {}) as Record<string, unknown>;
  const options: ClientSessionOptions = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!SESSION_OPTIONS.includes(key)) throw new UnimplementedError(`sessionOptions.${key}`);
    if (key === "defaultTransactionOptions") options.defaultTransactionOptions = transactionOptions(value, "defaultTransactionOptions");
    else (options as Record<string, unknown>)[key] = value;
  }
  const session = client.startSession(options);
  const lsid = session.id;
  if (!lsid) throw new TestFileError(`session ${String(spec.id)}: the driver gave no lsid`);
  return { kind: "session", session, lsid, client };
}

export const sessionOperations: Record<string, OperationDef<SessionEntity>> = {
  startTransaction: {
    args: TRANSACTION_OPTIONS,
    // Synchronous in the driver; a client-side error (w:0, already in progress) is thrown here.
    run: async (s, a) => {
      s.session.startTransaction(transactionOptions(a, "startTransaction"));
      return undefined;
    },
  },
  commitTransaction: {
    args: [],
    run: async (s) => {
      await s.session.commitTransaction();
      return undefined;
    },
  },
  abortTransaction: {
    args: [],
    run: async (s) => {
      await s.session.abortTransaction();
      return undefined;
    },
  },
  endSession: {
    args: [],
    run: async (s) => {
      await s.session.endSession();
      return undefined;
    },
  },
};

/** The driver's transaction states, named as the spec's assertSessionTransactionState does. */
const STATES: Record<string, string> = {
  NO_TRANSACTION: "none",
  STARTING_TRANSACTION: "starting",
  TRANSACTION_IN_PROGRESS: "in_progress",
  TRANSACTION_COMMITTED: "committed",
  TRANSACTION_COMMITTED_EMPTY: "committed",
  TRANSACTION_ABORTED: "aborted",
};

export function assertTransactionState(s: SessionEntity, expected: unknown): void {
  const raw = (s.session as unknown as { transaction?: { state?: string } }).transaction?.state;
  if (raw === undefined) throw new UnimplementedError("assertSessionTransactionState: this driver version exposes no transaction state");
  const actual = STATES[raw];
  if (actual === undefined) throw new UnimplementedError(`assertSessionTransactionState: unknown driver state ${raw}`);
  if (actual !== expected) throw new AssertionFailure(`session transaction state is ${actual} (${raw}), expected ${String(expected)}`);
}

/** On a replica set a session is never pinned to a mongos (transactions spec "Mongos Pinning"). */
export function pinnedServer(s: SessionEntity): unknown {
  const t = (s.session as unknown as { transaction?: { server?: unknown; isPinned?: boolean } }).transaction;
  return t?.isPinned ? t.server : undefined;
}

export function sessionArgument(value: unknown, lookup: (id: string) => SessionEntity): ClientSession {
  if (typeof value !== "string") throw new TestFileError(`session argument must name a session entity, got ${JSON.stringify(value)}`);
  return lookup(value).session;
}
