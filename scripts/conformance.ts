// npm run conformance [dir ...]
// Runs the unified-format MongoDB spec tests of each directory (default: $CONFORMANCE_DIRS, a
// colon-separated list, else ../shared/conformance) against the backend from openBackend and
// prints per-file, per-directory and total counts, the not-applicable tests and the failures.
// Exit code 1 on any failure not listed in scripts/conformance/known-gaps.json, 2 when it
// cannot run at all.
import { existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { type BackendMode, openBackend } from "../src/mongo/backend.js";
import { formatVersion } from "./conformance/requirements.js";
import { findSpecFiles, type SpecFile } from "./conformance/loader.js";
import { buildReport, loadKnownGaps } from "./conformance/report.js";
import { runSuite } from "./conformance/suite.js";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "..");
const fromEnv = (process.env.CONFORMANCE_DIRS ?? "").split(":").filter((d) => d !== "");
const given = process.argv.slice(2);
const dirs = (given.length > 0 ? given : fromEnv.length > 0 ? fromEnv : [resolve(repoRoot, "../shared/conformance")]).map((d) => resolve(d));
const logger = pino({ name: "conformance", level: process.env.LOG_LEVEL ?? "warn" }, pino.destination(2));

function parseMode(value: string | undefined): BackendMode | undefined {
  if (value === undefined || value === "") return undefined;
  if (value === "auto" || value === "mongod" || value === "sim") return value;
  throw new Error(`FLOWSYNC_MONGO must be auto, mongod or sim, got ${JSON.stringify(value)}`);
}

async function main(): Promise<number> {
  const files: SpecFile[] = [];
  for (const dir of dirs) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      console.error(`conformance: test directory not found: ${dir}`);
      console.error("conformance: pass the directories of unified-format JSON tests as arguments (or CONFORMANCE_DIRS=a:b)");
      return 2;
    }
    const found = await findSpecFiles(dir);
    if (found.length === 0) {
      console.error(`conformance: no .json test files under ${dir}`);
      return 2;
    }
    files.push(...found);
  }
  const gaps = await loadKnownGaps(resolve(here, "conformance/known-gaps.json"));

  // MONGO_URL wins; otherwise FLOWSYNC_MONGO picks embedded mongod or the simulator.
  const backend = await openBackend({ mongoUrl: process.env.MONGO_URL || undefined, mode: parseMode(process.env.FLOWSYNC_MONGO), logger });
  try {
    const { server, outcomes } = await runSuite(files, backend.url, logger);
    console.log(`backend: ${backend.kind}, server ${formatVersion(server.version)}, ${server.topology}; tests from ${dirs.join(", ")}`);
    const report = buildReport(outcomes, gaps);
    for (const line of report.lines) console.log(line);
    return report.exitCode;
  } finally {
    await backend.stop();
  }
}

main().then(
  // Exit explicitly: an abandoned (timed-out) driver call may keep sockets open.
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`conformance: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
