// Turning test outcomes and the known-gaps list into the printed report and
// the exit code. Pure: no I/O besides loadKnownGaps.
import { readFile } from "node:fs/promises";

export interface TestOutcome {
  /** File name as printed, e.g. "change-streams.json". */
  file: string;
  /** Path under the conformance directory, e.g. "change-streams/change-streams.json". */
  relPath: string;
  /** The directory it is totalled under, e.g. "conformance-more/crud" (loader.ts SpecFile.group). */
  group?: string;
  test: string;
  /** driver-deviation: everything matched but what the installed driver itself sends differently (errors.ts). */
  status: "passed" | "failed" | "not-applicable" | "driver-deviation";
  reason?: string;
}

/** A failure we know about and accept for now. It still counts as failed. */
export interface KnownGap {
  file: string;
  test: string;
  reason: string;
}

export interface Report {
  lines: string[];
  exitCode: number;
}

export async function loadKnownGaps(path: string): Promise<KnownGap[]> {
  const raw: unknown = JSON.parse(await readFile(path, "utf8"));
  if (!Array.isArray(raw)) throw new Error(`${path}: expected an array of {file, test, reason}`);
  return raw.map((entry: unknown, i) => {
    const e = entry as Record<string, unknown>;
    if (typeof e?.file !== "string" || typeof e.test !== "string" || typeof e.reason !== "string") {
      throw new Error(`${path}[${i}]: expected {file, test, reason} strings`);
    }
    return { file: e.file, test: e.test, reason: e.reason };
  });
}

/** A gap may name the file by its name or by its path under the directory. */
function gapFor(outcome: TestOutcome, gaps: KnownGap[]): KnownGap | undefined {
  return gaps.find((g) => (g.file === outcome.file || g.file === outcome.relPath) && g.test === outcome.test);
}

const label = (o: TestOutcome) => `${o.group !== undefined ? `${o.group}/` : ""}${o.file} › ${o.test}`;

/** Reasons stay one readable line; server messages can be paragraphs. */
const MAX_REASON = 500;
const short = (reason: string | undefined) => {
  const text = (reason ?? "").replace(/\s+/g, " ");
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON - 1)}…` : text;
};

export function buildReport(outcomes: TestOutcome[], gaps: KnownGap[]): Report {
  const lines: string[] = [];
  // Two directories may hold files of the same path: a file is its group plus its path.
  const fileKey = (o: TestOutcome) => `${o.group ?? ""}\0${o.relPath}`;
  const files = [...new Set(outcomes.map(fileKey))];
  for (const key of files) {
    const mine = outcomes.filter((o) => fileKey(o) === key);
    const passed = mine.filter((o) => o.status === "passed").length;
    const failed = mine.filter((o) => o.status === "failed").length;
    lines.push(`${mine[0]!.file}: ${passed} passed, ${failed} failed`);
  }
  const totals = (list: TestOutcome[]) => {
    const count = (s: TestOutcome["status"]) => list.filter((o) => o.status === s).length;
    const deviations = count("driver-deviation");
    return `${count("passed")} passed, ${count("failed")} failed, ${count("not-applicable")} not applicable${deviations > 0 ? `, ${deviations} driver deviation` : ""}`;
  };
  const groups = [...new Set(outcomes.map((o) => o.group).filter((g): g is string => g !== undefined))];
  if (groups.length > 0) lines.push("");
  for (const group of groups) lines.push(`directory ${group}: ${totals(outcomes.filter((o) => o.group === group))}`);
  lines.push(`conformance: ${totals(outcomes)}`);

  const notApplicable = outcomes.filter((o) => o.status === "not-applicable");
  if (notApplicable.length > 0) {
    lines.push("", `not applicable (${notApplicable.length}):`);
    for (const o of notApplicable) lines.push(`  ${label(o)}: ${short(o.reason)}`);
  }

  const deviating = outcomes.filter((o) => o.status === "driver-deviation");
  if (deviating.length > 0) {
    lines.push("", `driver deviation (${deviating.length}; neither passed nor failed: the same happens on a real mongod with this driver):`);
    for (const o of deviating) lines.push(`  ${label(o)}: ${short(o.reason)}`);
  }

  let unexpected = 0;
  const failed = outcomes.filter((o) => o.status === "failed");
  if (failed.length > 0) {
    lines.push("", `failures (${failed.length}):`);
    for (const o of failed) {
      const gap = gapFor(o, gaps);
      if (gap) lines.push(`  ${label(o)}: known gap (${gap.reason}): ${short(o.reason)}`);
      else {
        unexpected++;
        lines.push(`  ${label(o)}: ${short(o.reason)}`);
      }
    }
  }

  const nowPassing = outcomes.filter((o) => o.status === "passed" && gapFor(o, gaps));
  // Only gaps of files that ran: another directory may hold other files.
  const ranFile = (g: KnownGap) => outcomes.some((o) => g.file === o.file || g.file === o.relPath);
  const stale = gaps.filter((g) => ranFile(g) && !outcomes.some((o) => (g.file === o.file || g.file === o.relPath) && g.test === o.test));
  if (nowPassing.length > 0 || stale.length > 0) {
    lines.push("", "known-gaps.json needs attention:");
    for (const o of nowPassing) lines.push(`  ${label(o)}: known gap now passes: remove it`);
    for (const g of stale) lines.push(`  ${g.file} › ${g.test}: known gap matches no test: remove it`);
  }

  return { lines, exitCode: unexpected > 0 ? 1 : 0 };
}
