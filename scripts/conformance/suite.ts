// Running every test of every file against one backend URL.
import { MongoClient } from "mongodb";
import type { Logger } from "pino";
import { DriverDeviationError, NotApplicable, describeError } from "./errors.js";
import { type SpecFile, parseSpecFile, schemaProblem } from "./loader.js";
import type { TestOutcome } from "./report.js";
import { type ServerInfo, evaluateRequirements } from "./requirements.js";
import { readServerInfo } from "./server-info.js";
import { runTest } from "./test-runner.js";

export interface SuiteResult {
  server: ServerInfo;
  outcomes: TestOutcome[];
}

export async function runSuite(files: SpecFile[], url: string, logger: Logger): Promise<SuiteResult> {
  const internal = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 });
  try {
    await internal.connect();
    const server = await readServerInfo(internal, url);
    await killAllSessions(internal, logger);
    const outcomes: TestOutcome[] = [];
    for (const file of files) outcomes.push(...(await runFile(file, server, url, internal, logger)));
    return { server, outcomes };
  } finally {
    await internal.close().catch(() => undefined);
  }
}

/** Spec "Terminating Open Transactions": leftovers of an earlier run must not
 *  block this one. Failure is harmless (old servers, simulators). */
async function killAllSessions(internal: MongoClient, logger: Logger): Promise<void> {
  try {
    await internal.db("admin").command({ killAllSessions: [] });
  } catch (err) {
    logger.debug({ err }, "killAllSessions failed; continuing");
  }
}

async function runFile(file: SpecFile, server: ServerInfo, url: string, internal: MongoClient, logger: Logger): Promise<TestOutcome[]> {
  const parsed = parseSpecFile(file.text);
  const base = { file: file.name, relPath: file.relPath, group: file.group };
  const all = (status: TestOutcome["status"], reason: string) => parsed.tests.map((t) => ({ ...base, test: t.description, status, reason }));

  const problem = schemaProblem(parsed.schemaVersion);
  if (problem) return all("failed", problem);

  let fileVerdict;
  try {
    fileVerdict = await evaluateRequirements(parsed.runOnRequirements, server);
  } catch (err) {
    return all("failed", describeError(err));
  }
  if (!fileVerdict.ok) return all("not-applicable", `file runOnRequirements not met: ${fileVerdict.reason}`);

  const outcomes: TestOutcome[] = [];
  for (let i = 0; i < parsed.tests.length; i++) {
    // Fresh objects for every test: the driver mutates what it is given.
    const fresh = parseSpecFile(file.text);
    const test = fresh.tests[i]!; // the same text parsed again: the same number of tests
    const outcome = { ...base, test: test.description };
    try {
      if (test.skipReason !== undefined) {
        outcomes.push({ ...outcome, status: "not-applicable", reason: `skipReason: ${test.skipReason}` });
        continue;
      }
      const verdict = await evaluateRequirements(test.runOnRequirements, server);
      if (!verdict.ok) {
        outcomes.push({ ...outcome, status: "not-applicable", reason: `runOnRequirements not met: ${verdict.reason}` });
        continue;
      }
      const started = Date.now();
      // Transactions spec "Terminating Open Transactions": one left open by an earlier test
      // (a session the driver dropped after a network error) would hold its locks into this one.
      await killAllSessions(internal, logger);
      const failure = await runTest(fresh, test, { url, topology: server.topology, secondaries: server.secondaries, internal });
      logger.debug({ file: file.name, test: test.description, ms: Date.now() - started, failure }, "test done");
      if (failure instanceof NotApplicable) outcomes.push({ ...outcome, status: "not-applicable", reason: failure.message });
      else if (failure instanceof DriverDeviationError) outcomes.push({ ...outcome, status: "driver-deviation", reason: failure.message });
      else outcomes.push(failure === null ? { ...outcome, status: "passed" } : { ...outcome, status: "failed", reason: failure });
    } catch (err) {
      outcomes.push({ ...outcome, status: "failed", reason: describeError(err) });
    }
  }
  return outcomes;
}
