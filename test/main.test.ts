/**
 * The command line and the start-up path before any resource exists: `--help`, a bad argument,
 * and a configuration error, each in a real child process (`src/main.ts`).
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { CONFIG_VARIABLES, configHelp } from "../src/config";
import { runMain } from "./support/process";

/** `src/main.ts` with `args`, on the simulator, run to its end: exit code and the whole output. */
async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = runMain({ FLOWSYNC_MONGO: "sim", PORT: "0", ...env }, args);
  const { code } = await child.closed;
  return { code, stdout: child.stdout, stderr: child.stderr };
}

describe("src/main.ts", () => {
  it("--help and -h print the usage and every variable with its default, exit 0, start nothing", async () => {
    for (const flag of ["--help", "-h"]) {
      const { code, stdout } = await run([flag]);
      expect(code).toBe(0);
      expect(stdout).toContain("Usage: npm start");
      for (const name of CONFIG_VARIABLES) expect(stdout).toMatch(new RegExp(`^${name} `, "m"));
      expect(stdout).toMatch(/^PORT +3000 /m);
      expect(stdout).not.toContain("listening");
    }
  });

  it("an unknown argument is an error naming it, exit 2", async () => {
    const { code, stdout, stderr } = await run(["--port=80"]);
    expect(code).toBe(2);
    expect(stderr).toContain('unknown argument "--port=80"');
    expect(stdout).toBe("");
  });

  it("a bad LOG_LEVEL is a configuration error naming it, like any other variable (no stack trace)", async () => {
    const { code, stdout } = await run([], { LOG_LEVEL: "bogus", PORT: "-1" });
    expect(code).toBe(1);
    const line = JSON.parse(stdout.trim()) as { level: number; msg: string; err?: unknown };
    expect(line.level).toBe(60);
    expect(line.msg).toMatch(/^invalid configuration: /);
    expect(line.msg).toMatch(/LOG_LEVEL: Invalid option/);
    expect(line.msg).toMatch(/PORT: Too small/);
    expect(line.err).toBeUndefined();
  });

  it("LOG_FORMAT=pretty prints readable lines, with the start-up failure's message", async () => {
    const { code, stdout } = await run([], { LOG_FORMAT: "pretty", FILTERS_DIR: "/nonexistent-filters-dir" });
    expect(code).toBe(1);
    expect(stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} FATAL .*nonexistent-filters-dir/m);
    expect(stdout).not.toContain('"level"');
  });
});

describe("configuration docs", () => {
  it("docs/configuration.md has a row for exactly the variables src/config.ts reads", async () => {
    const doc = await readFile("docs/configuration.md", "utf8");
    const table = doc.slice(doc.indexOf("## Variables"), doc.indexOf("### Outside the service"));
    const documented = [...table.matchAll(/^\| (`[A-Z_]+`(?: \/ `[A-Z_]+`)*) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`([A-Z_]+)`/g)].map((n) => n[1]));
    expect(documented.sort()).toEqual([...CONFIG_VARIABLES].sort());
  });

  it("--help's table has one line per variable, aligned", () => {
    const lines = configHelp().split("\n");
    expect(lines).toHaveLength(CONFIG_VARIABLES.length + 1);
    const column = lines[0]!.indexOf("default");
    for (const line of lines.slice(1)) expect(line[column - 1]).toBe(" ");
  });
});
