// expectError: assertions about the error an operation raised (spec "expectedError").
import { MongoBulkWriteError, MongoError, MongoOperationTimeoutError, MongoServerError } from "mongodb";
import { show } from "./bson-values.js";
import { bulkWriteResult } from "./crud-results.js";
import { AssertionFailure, UnimplementedError, describeError } from "./errors.js";
import { match } from "./matcher.js";

type Expected = Record<string, unknown>;

const KNOWN_KEYS = new Set([
  "isError",
  "isClientError",
  "isTimeoutError",
  "errorContains",
  "errorCode",
  "errorCodeName",
  "errorLabelsContain",
  "errorLabelsOmit",
  "errorResponse",
  "expectResult",
]);

/** For a bulk write error the spec says errorContains/errorCodeName may match
 *  any of the aggregated write errors or the write concern error. */
function aggregatedErrors(error: unknown): { message: string; code?: unknown; codeName?: unknown }[] {
  const top = error as { message?: string; code?: unknown; codeName?: unknown };
  const list = [{ message: String(top.message ?? ""), code: top.code, codeName: top.codeName }];
  if (error instanceof MongoBulkWriteError) {
    const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
    for (const we of writeErrors) {
      // The raw server entry also carries codeName, which WriteError's typed API omits.
      const raw = we.err as { codeName?: unknown };
      list.push({ message: we.errmsg ?? "", code: we.code, codeName: raw.codeName });
    }
    const wce = error.result.getWriteConcernError();
    if (wce) list.push({ message: wce.errmsg ?? "", code: wce.code, codeName: (wce.toJSON() as { codeName?: unknown }).codeName });
  }
  return list;
}

function labelsOf(error: unknown): string[] {
  return error instanceof MongoError ? [...error.errorLabels] : [];
}

/** Throws AssertionFailure describing the first unmet expectation. */
export function checkExpectedError(expected: Expected, error: unknown): void {
  for (const key of Object.keys(expected)) {
    // writeErrors / writeConcernErrors belong to clientBulkWrite, which we don't run.
    if (!KNOWN_KEYS.has(key)) throw new UnimplementedError(`expectError.${key}`);
  }
  const fail = (what: string) => new AssertionFailure(`expectError ${what}; the error was ${describeError(error)}`);
  const isServer = error instanceof MongoServerError;

  if (expected.isClientError === true && isServer) throw fail("isClientError: true, but it came from the server");
  if (expected.isClientError === false && !isServer) throw fail("isClientError: false, but it did not come from the server");

  const isTimeout = error instanceof MongoOperationTimeoutError;
  if (expected.isTimeoutError === true && !isTimeout) throw fail("isTimeoutError: true, but it is no timeout error");
  if (expected.isTimeoutError === false && isTimeout) throw fail("isTimeoutError: false, but it is a timeout error");

  const errors = aggregatedErrors(error);
  if (expected.errorContains !== undefined) {
    const needle = String(expected.errorContains).toLowerCase();
    if (!errors.some((e) => e.message.toLowerCase().includes(needle))) throw fail(`errorContains ${show(expected.errorContains)} not found`);
  }
  if (expected.errorCode !== undefined && !errors.some((e) => e.code === expected.errorCode)) {
    throw fail(`errorCode ${show(expected.errorCode)} expected`);
  }
  if (expected.errorCodeName !== undefined) {
    const want = String(expected.errorCodeName).toLowerCase();
    if (!errors.some((e) => typeof e.codeName === "string" && e.codeName.toLowerCase() === want))
      throw fail(`errorCodeName ${String(expected.errorCodeName)} expected`);
  }

  const labels = labelsOf(error);
  for (const label of (expected.errorLabelsContain as string[] | undefined) ?? []) {
    if (!labels.includes(label)) throw fail(`label ${label} missing (labels: [${labels.join(", ")}])`);
  }
  for (const label of (expected.errorLabelsOmit as string[] | undefined) ?? []) {
    if (labels.includes(label)) throw fail(`label ${label} must be absent`);
  }

  if (expected.errorResponse !== undefined) {
    if (!isServer) throw fail("errorResponse expected, but there is no server response");
    const failure = match(expected.errorResponse, error.errorResponse, { root: true });
    if (failure) throw fail(`errorResponse mismatch: ${failure}`);
  }

  if (expected.expectResult !== undefined) {
    // Only bulk write errors carry a partial result (BulkWriteException.writeResult).
    const result = error instanceof MongoBulkWriteError ? bulkWriteResult(error.result) : undefined;
    const failure = match(expected.expectResult, result, { root: true });
    if (failure) throw fail(`expectResult mismatch: ${failure}`);
  }
}
