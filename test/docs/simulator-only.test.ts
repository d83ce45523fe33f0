/**
 * Tests that need a simulator knob (a tiny oplog, a network cut, a standalone server) run only
 * on the simulator; on a real mongod vitest reports them as skipped. They are marked in the code
 * with `runIf(isSim)` / `runIf(onSimulator)` and must be listed, by file and title, in
 * docs/testing.md ("Simulator-only tests"), so that no test is skipped on mongod unannounced.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, it } from "vitest";

async function testFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await testFiles(path)));
    else if (entry.name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

it("every simulator-only test is listed in docs/testing.md, and every listed one exists", async () => {
  const marked: string[] = [];
  for (const file of await testFiles("test")) {
    const text = await readFile(file, "utf8");
    for (const m of text.matchAll(/\b(?:it|describe|test)\.runIf\(\s*(?:isSim|onSimulator)\s*\)\(\s*(["'`])((?:(?!\1).)+)\1/g)) {
      marked.push(`${file} — ${m[2]}`);
    }
  }
  const doc = await readFile("docs/testing.md", "utf8");
  const section = doc.split(/^## Simulator-only tests$/m)[1]?.split(/^## /m)[0] ?? "";
  const listed = [...section.matchAll(/^- `([^`]+)` — (.+)$/gm)].map((m) => `${m[1]} — ${m[2]}`);
  expect(marked.length).toBeGreaterThan(0);
  expect(listed.sort()).toEqual(marked.sort());
});
