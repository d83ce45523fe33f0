/**
 * Server-side errors as MongoDB reports them: `{ok: 0, errmsg, code, codeName, errorLabels?}`.
 * Codes and names follow the server's error_codes.yml; only the ones the simulator raises.
 */
import type { Document } from "bson";

export const Codes = {
  BadValue: 2,
  FailedToParse: 9,
  TypeMismatch: 14,
  InvalidLength: 16,
  IllegalOperation: 20,
  NamespaceNotFound: 26,
  CursorNotFound: 43,
  NoMatchingDocument: 47,
  NamespaceExists: 48,
  InvalidOptions: 72,
  InvalidNamespace: 73,
  IndexNotFound: 27,
  ImmutableField: 66,
  IndexOptionsConflict: 85,
  IndexKeySpecsConflict: 86,
  NotImplemented: 238,
  CursorKilled: 237,
  ClientDisconnect: 279,
  SnapshotTooOld: 239,
  SnapshotUnavailable: 246,
  InvalidResumeToken: 260,
  InvalidIdField: 53,
  DocumentValidationFailure: 121,
  CommandNotSupportedOnView: 166,
  OptionNotSupportedOnView: 167,
  ViewDepthLimitExceeded: 170,
  ChangeStreamFatalError: 280,
  ChangeStreamHistoryLost: 286,
  CommandNotFound: 59,
  DuplicateKey: 11000,
  InternalError: 1,
  InvalidPipelineOperator: 168,
  UnrecognizedPipelineStage: 40324,
  ChangeStreamNotSupported: 40573,
  NotWritablePrimary: 10107,
  Unauthorized: 13,
  // Sessions and transactions.
  MaxTimeMSExpired: 50,
  UnknownReplWriteConcern: 79,
  UnsatisfiableWriteConcern: 100,
  WriteConflict: 112,
  ConflictingOperationInProgress: 117,
  IncompleteTransactionHistory: 217,
  TransactionTooOld: 225,
  NoSuchTransaction: 251,
  TransactionCommitted: 256,
  OperationNotSupportedInTransaction: 263,
  Interrupted: 11601,
} as const;

const NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Codes)
    // Codes that the server reports without a codeName (assertion ids, not named codes).
    .filter(([, code]) => code !== 40324 && code !== 40573)
    .map(([name, code]) => [code, name]),
);

export function codeName(code: number): string | undefined {
  return NAMES[code];
}

export class ServerError extends Error {
  override name = "ServerError";
  constructor(
    readonly code: number,
    message: string,
    readonly errorLabels?: string[],
    /** Extra fields mongod attaches to this error (e.g. keyPattern/keyValue on 11000). */
    readonly info: Document = {},
  ) {
    super(message);
  }

  toReply(): Document {
    const reply: Document = { ok: 0, errmsg: this.message, code: this.code, ...this.info };
    const name = codeName(this.code);
    if (name) reply.codeName = name;
    if (this.errorLabels && this.errorLabels.length > 0) reply.errorLabels = this.errorLabels;
    return reply;
  }

  /** The same error as an entry of a write command's `writeErrors`. */
  toWriteError(index: number): Document {
    const name = codeName(this.code);
    return { index, code: this.code, ...(name ? { codeName: name } : {}), ...this.info, errmsg: this.message };
  }
}

/**
 * An exception from mingo (query, update and aggregation engine) as the error
 * mongod raises for the same input, so a caller sees the documented code
 * (e.g. 40324 for an unknown stage) rather than a generic failure.
 */
export function engineError(err: unknown, fallback: number = Codes.InternalError): ServerError {
  if (err instanceof ServerError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const operator = /(\$\w+)/.exec(message)?.[1] ?? "?";
  if (/unregistered pipeline operator/.test(message))
    return new ServerError(Codes.UnrecognizedPipelineStage, `Unrecognized pipeline stage name: '${operator}'`);
  if (/unknown query operator/.test(message)) return new ServerError(Codes.BadValue, `unknown operator: ${operator}`);
  if (/Unknown update operator/.test(message)) {
    return new ServerError(
      Codes.FailedToParse,
      `Unknown modifier: ${operator}. Expected a valid update modifier or pipeline-style update specified as an array`,
    );
  }
  if (/is not registered/.test(message)) return new ServerError(Codes.InvalidPipelineOperator, `Unrecognized expression '${operator}'`);
  return new ServerError(fallback, fallback === Codes.InternalError ? `simulator error: ${message}` : message);
}

export function fail(code: number, message: string, errorLabels?: string[]): never {
  throw new ServerError(code, message, errorLabels);
}

/**
 * Codes a 7.0 server labels ResumableChangeStreamError on a change-stream getMore
 * (error_label_builder.cpp: the RetriableError and NetworkError classes, the
 * NeedRetargettingError class, RetryChangeStream, FailedToSatisfyReadPreference).
 * Not 43 (the driver resumes on it without a label) and not 63 (StaleShardVersion,
 * gone since 6.1: the resume-errorLabels spec test stops at maxServerVersion 6.0.99).
 */
export const RESUMABLE_CODES = new Set([6, 7, 89, 91, 133, 150, 189, 234, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436]);

/** Codes that get RetryableWriteError on retryable writes (docs/mongodb.md#error-replies-and-retryable-writes). */
export const RETRYABLE_WRITE_CODES = new Set([6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);
