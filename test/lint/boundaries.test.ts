/**
 * The layering is enforced by `npm run lint` (eslint.config.js): these lint
 * small sources as if they sat at a path in src/, so a layer-breaking import is
 * shown to fail, and an allowed one to pass.
 */
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const eslint = new ESLint({ cwd: process.cwd() });

async function problems(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

/** A module with one import line whose binding is used (so only the import itself can be the problem). */
const probe = (line: string) => `${line}\nexport const used = [${/import (?:type )?\{ (\w+)/.exec(line)?.[1]}];\n`;

describe("lint: one direction (mongo → watch → events → hub → http)", () => {
  it.each([
    ["src/events/probe.ts", 'import { FlowHub } from "../hub/flow-hub";', "src/events is the pure mapping layer"],
    ["src/events/probe.ts", 'import { compileFilters } from "../filters/compile";', "src/events is the pure mapping layer"],
    ["src/hub/probe.ts", 'import { createApp } from "../http/app";', "src/hub knows no HTTP"],
    ["src/watch/probe.ts", 'import { encodeCursor } from "../events/cursor";', "src/watch reads change streams"],
    ["src/mongo/probe.ts", 'import { FlowHub } from "../hub/flow-hub";', "src/mongo is the bottom layer"],
    ["src/snapshot/probe.ts", 'import { createApp } from "../http/app";', "nothing below src/http imports it"],
    ["packages/client/src/probe.ts", 'import { FlowsyncError } from "../../../src/errors";', "packages/client imports only itself"],
    ["src/token.ts", 'import { FlowsyncError } from "./errors";', "no-restricted-imports"],
  ])("%s: %s fails", async (filePath, line, expected) => {
    const found = await problems(filePath, probe(line));
    expect(
      found.some((p) => p.includes(expected)),
      found.join("\n"),
    ).toBe(true);
  });

  it.each([
    ["src/hub/probe.ts", 'import { formatEvent } from "../events/sse-frame";'],
    ["src/hub/probe.ts", 'import { catchUpChanges } from "../watch/catch-up";'],
    ["src/watch/probe.ts", 'import { laterToken } from "../token";'],
    ["packages/client/src/probe.ts", 'import { backoffDelay } from "./backoff";'],
    ["src/http/probe.ts", 'import { FlowHub } from "../hub/flow-hub";'],
  ])("%s: %s passes", async (filePath, line) => {
    expect(await problems(filePath, probe(line))).toEqual([]);
  });
});

describe("lint: named swallowing", () => {
  it("refuses an anonymous empty .catch and accepts squashError", async () => {
    const anonymous = await problems("src/hub/probe.ts", "export const p = Promise.resolve().catch(() => {});\n");
    expect(anonymous.some((p) => p.startsWith("no-restricted-syntax"))).toBe(true);
    const named = await problems("src/hub/probe.ts", 'import { squashError } from "../errors";\nexport const p = Promise.resolve().catch(squashError);\n');
    expect(named).toEqual([]);
  });
});

describe("lint: no module-level mutable state", () => {
  it.each(["src/hub/probe.ts", "packages/client/src/probe.ts"])("%s: a top-level let fails, a let inside a function passes", async (filePath) => {
    const moduleLet = await problems(filePath, "let count = 0;\nexport const next = () => ++count;\n");
    expect(moduleLet.some((p) => p.includes("No module-level mutable state"))).toBe(true);
    const exported = await problems(filePath, "export let count = 0;\n");
    expect(exported.some((p) => p.includes("No module-level mutable state"))).toBe(true);
    const owned = await problems(filePath, "export function counter() {\n  let count = 0;\n  return () => ++count;\n}\n");
    expect(owned).toEqual([]);
  });
});
