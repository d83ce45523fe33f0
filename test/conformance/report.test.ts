import { describe, expect, it } from "vitest";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findSpecFiles } from "../../scripts/conformance/loader.js";
import { buildReport, type TestOutcome } from "../../scripts/conformance/report.js";
import { applyUriOptions } from "../../scripts/conformance/uri.js";

const o = (relPath: string, test: string, status: TestOutcome["status"], reason?: string): TestOutcome => ({
  file: relPath.split("/").pop() ?? relPath,
  relPath,
  test,
  status,
  reason,
});

describe("report", () => {
  const outcomes = [
    o("change-streams/change-streams.json", "a", "passed"),
    o("change-streams/change-streams.json", "b", "failed", "expectResult: .x: expected 1, got 2"),
    o("change-streams/change-streams.json", "c", "not-applicable", "runOnRequirements not met: server 7.0.0 > maxServerVersion 4.2.99"),
    o("crud/find.json", "d", "passed"),
  ];

  it("prints per-file and total counts, then not-applicable tests, then failures", () => {
    const { lines, exitCode } = buildReport(outcomes, []);
    expect(lines[0]).toBe("change-streams.json: 1 passed, 1 failed");
    expect(lines[1]).toBe("find.json: 1 passed, 0 failed");
    expect(lines[2]).toBe("conformance: 2 passed, 1 failed, 1 not applicable");
    const text = lines.join("\n");
    expect(text).toMatch(/not applicable \(1\):\n {2}change-streams.json › c: runOnRequirements not met/);
    expect(text).toMatch(/failures \(1\):\n {2}change-streams.json › b: expectResult/);
    expect(text.indexOf("not applicable (1)")).toBeLessThan(text.indexOf("failures (1)"));
    expect(exitCode).toBe(1);
  });

  it("a driver deviation is counted and listed on its own: neither passed, failed nor not applicable", () => {
    const { lines, exitCode } = buildReport(
      [...outcomes.filter((x) => x.status !== "failed"), o("transactions/commit.json", "e", "driver-deviation", "everything else matched: commit-wtimeout")],
      [],
    );
    expect(lines).toContain("conformance: 2 passed, 0 failed, 1 not applicable, 1 driver deviation");
    expect(lines.join("\n")).toMatch(/driver deviation \(1; [^)]*\):\n {2}commit.json › e: everything else matched/);
    expect(exitCode).toBe(0);
  });

  it("a listed gap still counts as failed but does not fail the run", () => {
    const { lines, exitCode } = buildReport(outcomes, [{ file: "change-streams.json", test: "b", reason: "sim lacks X" }]);
    expect(lines[0]).toBe("change-streams.json: 1 passed, 1 failed");
    expect(lines.join("\n")).toContain("change-streams.json › b: known gap (sim lacks X): expectResult");
    expect(exitCode).toBe(0);
  });

  it("accepts the file's path under the directory as well", () => {
    expect(buildReport(outcomes, [{ file: "change-streams/change-streams.json", test: "b", reason: "r" }]).exitCode).toBe(0);
  });

  it("reports a gap that now passes, and one that matches no test", () => {
    const gaps = [
      { file: "find.json", test: "d", reason: "was broken" },
      { file: "find.json", test: "gone", reason: "old" },
      { file: "other.json", test: "x", reason: "file not run" },
    ];
    const { lines, exitCode } = buildReport(outcomes, gaps);
    const text = lines.join("\n");
    expect(text).toContain("find.json › d: known gap now passes: remove it");
    expect(text).toContain("find.json › gone: known gap matches no test: remove it");
    expect(text).not.toContain("other.json");
    expect(exitCode).toBe(1); // "b" is still an unlisted failure
  });
});

describe("report per directory", () => {
  const g = (group: string, relPath: string, test: string, status: TestOutcome["status"]): TestOutcome => ({ ...o(relPath, test, status), group });

  it("totals each directory, keeps same-named files of two directories apart, and names the directory in the lists", () => {
    const outcomes = [
      g("conformance/crud", "crud/find.json", "a", "passed"),
      g("conformance-more/crud", "crud/find.json", "a", "failed"),
      g("conformance-more/crud", "crud/count.json", "b", "not-applicable"),
      g("conformance-more/transactions", "transactions/commit.json", "c", "passed"),
    ];
    const { lines, exitCode } = buildReport(outcomes, []);
    expect(lines.slice(0, 3)).toEqual(["find.json: 1 passed, 0 failed", "find.json: 0 passed, 1 failed", "count.json: 0 passed, 0 failed"]);
    expect(lines).toContain("directory conformance/crud: 1 passed, 0 failed, 0 not applicable");
    expect(lines).toContain("directory conformance-more/crud: 0 passed, 1 failed, 1 not applicable");
    expect(lines).toContain("directory conformance-more/transactions: 1 passed, 0 failed, 0 not applicable");
    // The grand total stays the last count line (.ci/run reads it).
    expect(lines.filter((l) => l.startsWith("conformance:"))).toEqual(["conformance: 2 passed, 1 failed, 1 not applicable"]);
    const text = lines.join("\n");
    expect(text).toContain("  conformance-more/crud/find.json › a: ");
    expect(text).toContain("  conformance-more/crud/count.json › b: ");
    expect(exitCode).toBe(1);
  });

  it("findSpecFiles groups a file under the given directory's name and its folder in it", async () => {
    const root = await mkdtemp(join(tmpdir(), "conf-"));
    try {
      const dir = join(root, "more");
      await mkdir(join(dir, "crud"), { recursive: true });
      await writeFile(join(dir, "top.json"), "{}");
      await writeFile(join(dir, "crud", "a.json"), "{}");
      await writeFile(join(dir, "crud", "notes.txt"), "");
      const files = await findSpecFiles(dir);
      expect(files.map((f) => [f.group, f.relPath, f.name])).toEqual([
        ["more/crud", join("crud", "a.json"), "a.json"],
        ["more", "top.json", "top.json"],
      ]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("uriOptions", () => {
  it("adds options, overriding those already in the URL (case-insensitively)", () => {
    expect(applyUriOptions("mongodb://h:1", { w: 1 })).toBe("mongodb://h:1/?w=1");
    expect(applyUriOptions("mongodb://h:1/?retryWrites=true&x=1", { RetryWrites: false })).toBe("mongodb://h:1/?x=1&RetryWrites=false");
    expect(applyUriOptions("mongodb://a:1,b:2/db?replicaSet=rs", { readConcernLevel: "majority" })).toBe(
      "mongodb://a:1,b:2/db?replicaSet=rs&readConcernLevel=majority",
    );
  });

  it("leaves the URL alone without options", () => {
    expect(applyUriOptions("mongodb://h:1", undefined)).toBe("mongodb://h:1");
  });

  it("encodes readPreferenceTags as repeated keys and documents as k:v lists", () => {
    expect(applyUriOptions("mongodb://h", { readPreferenceTags: ["dc:ny", ""] })).toBe("mongodb://h/?readPreferenceTags=dc%3Any&readPreferenceTags=");
    expect(applyUriOptions("mongodb://h", { authMechanismProperties: { A: "b" } })).toBe("mongodb://h/?authMechanismProperties=A%3Ab");
  });
});
