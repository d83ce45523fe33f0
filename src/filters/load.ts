/**
 * Loads FILTERS_DIR: every `*.ts`, `*.mts`, `*.js`, `*.mjs` (default export) and
 * `*.json` file directly in the directory is one filter. Files whose name starts
 * with `.` or `_` (shared helpers), `*.d.ts` and `*.test.*` are ignored.
 *
 * Any problem stops startup with `E_FILTER_INVALID` naming the file: a filter
 * that silently fails to load would let private fields through or drop events.
 * Files are read in name order so that messages are reproducible.
 */
import { readdir, readFile } from "node:fs/promises";
import { register } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { FlowsyncError } from "../errors";
import { compileFilters, type CompiledFilters } from "./compile";
import { parseFilter, type FilterSpec } from "./schema";

const MODULE_EXTENSIONS = new Set([".ts", ".mts", ".js", ".mjs"]);

export function isFilterFileName(name: string): boolean {
  if (name.startsWith(".") || name.startsWith("_")) return false;
  if (name.endsWith(".d.ts") || /\.test\.[a-z]+$/.test(name)) return false;
  const ext = path.extname(name);
  return ext === ".json" || MODULE_EXTENSIONS.has(ext);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A filter file can live anywhere (a FILTERS_DIR outside the repository, a folder
 * mounted into the image), where `flowsync/filters` and `zod` do not resolve from
 * its own folder. This Node resolve hook (https://nodejs.org/api/module.html#customization-hooks)
 * answers `flowsync/filters` with the service's `defineFilter` (an identity function:
 * its value is its type) and, when a filter's own folder has no zod, resolves `zod`
 * as the service itself does. Registered once per process: hooks are process-wide.
 */
const FILTER_HOOK = `
let service;
export function initialize(data) { service = data.parentURL; }
export async function resolve(specifier, context, next) {
  if (specifier === "flowsync/filters") return { url: "data:text/javascript,export function defineFilter(filter) { return filter; }", shortCircuit: true };
  try {
    return await next(specifier, context);
  } catch (err) {
    if (specifier !== "zod" || context.parentURL === service) throw err;
    return next(specifier, { ...context, parentURL: service });
  }
}`;
// The one module-level flag: it mirrors a process-wide fact (a registered hook cannot be removed),
// so it belongs to the process, not to an instance.
// eslint-disable-next-line no-restricted-syntax
let filterHookRegistered = false;

function registerFilterHook(): void {
  if (filterHookRegistered) return;
  filterHookRegistered = true;
  register(`data:text/javascript,${encodeURIComponent(FILTER_HOOK)}`, import.meta.url, { data: { parentURL: import.meta.url } });
}

async function readDefinition(file: string, source: string): Promise<unknown> {
  if (path.extname(file) === ".json") {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      throw new FlowsyncError("E_FILTER_INVALID", `cannot read filter ${source}: ${errorMessage(err)}`, { cause: err });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new FlowsyncError("E_FILTER_INVALID", `invalid filter ${source}: not JSON: ${errorMessage(err)}`, {
        cause: err,
      });
    }
  }
  let mod: { default?: unknown };
  try {
    registerFilterHook();
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    throw new FlowsyncError("E_FILTER_INVALID", `cannot load filter ${source}: ${errorMessage(err)}`, { cause: err });
  }
  if (mod.default === undefined) {
    throw new FlowsyncError("E_FILTER_INVALID", `invalid filter ${source}: no default export (write \`export default defineFilter({ … })\`)`);
  }
  return mod.default;
}

/** Reads and validates every filter file in `dir`, without compiling them. */
export async function readFilterSpecs(dir: string): Promise<FilterSpec[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new FlowsyncError("E_FILTER_INVALID", `cannot read filters directory ${dir}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  const files = names.filter(isFilterFileName).sort();
  if (files.length === 0) {
    throw new FlowsyncError("E_FILTER_INVALID", `no filter files in ${dir} (expected *.ts, *.js, *.mjs or *.json, one per watched collection)`);
  }
  const specs: FilterSpec[] = [];
  for (const name of files) {
    const source = path.join(dir, name);
    specs.push(parseFilter(await readDefinition(path.resolve(dir, name), source), source));
  }
  return specs;
}

/** Loads, validates and compiles the filters in `dir` (FILTERS_DIR, default `./filters`). */
export async function loadFilters(dir: string): Promise<CompiledFilters> {
  return compileFilters(await readFilterSpecs(dir));
}
