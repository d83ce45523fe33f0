// Finding and parsing the unified-format spec test files.
import { readdir, readFile } from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import { EJSON } from "bson";
import { parseVersion, compareVersions } from "./requirements.js";

/** Newest schema version whose files this runner accepts. Features of newer
 *  minor versions that it does not implement still fail loudly one by one
 *  (as "unimplemented: ..."), so accepting up to 1.21 hides nothing. */
export const SUPPORTED_SCHEMA = "1.21";

export interface SpecFile {
  /** File name as printed in the report, e.g. "change-streams.json". */
  name: string;
  /** Path relative to the conformance directory, e.g. "change-streams/change-streams.json". */
  relPath: string;
  /** The directory the report totals it under: the given directory's name and the file's folder in it, e.g. "conformance-more/crud". */
  group: string;
  text: string;
}

/** The parsed shape we rely on; everything else stays `unknown` and is
 *  checked where it is used. */
export interface UnifiedFile {
  description: string;
  schemaVersion: string;
  runOnRequirements?: Record<string, unknown>[];
  createEntities?: Record<string, unknown>[];
  initialData?: CollectionData[];
  tests: UnifiedTest[];
  [key: string]: unknown;
}

export interface CollectionData {
  collectionName: string;
  databaseName: string;
  createOptions?: Record<string, unknown>;
  documents: Record<string, unknown>[];
}

export interface UnifiedTest {
  description: string;
  runOnRequirements?: Record<string, unknown>[];
  skipReason?: string;
  operations: Operation[];
  expectEvents?: Record<string, unknown>[];
  outcome?: CollectionData[];
  [key: string]: unknown;
}

export interface Operation {
  name: string;
  object: string;
  arguments?: Record<string, unknown>;
  expectError?: Record<string, unknown>;
  expectResult?: unknown;
  saveResultAsEntity?: string;
  ignoreResultAndError?: boolean;
  [key: string]: unknown;
}

export async function findSpecFiles(dir: string): Promise<SpecFile[]> {
  const out: SpecFile[] = [];
  async function walk(current: string): Promise<void> {
    const entries = await readdir(current, { withFileTypes: true });
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile() && entry.name.endsWith(".json")) {
        const relPath = relative(dir, full);
        const folder = dirname(relPath);
        const group = folder === "." ? basename(dir) : `${basename(dir)}/${folder.split(sep).join("/")}`;
        out.push({ name: basename(full), relPath, group, text: await readFile(full, "utf8") });
      }
    }
  }
  await walk(dir);
  return out;
}

/** Test files are Extended JSON (relaxed or canonical). Parsed afresh for
 *  every test, because the driver mutates inputs (insertOne adds `_id`). */
export function parseSpecFile(text: string): UnifiedFile {
  return EJSON.parse(text, { relaxed: true }) as UnifiedFile;
}

/** Null when this runner may process the file, else the reason it may not. */
export function schemaProblem(schemaVersion: unknown): string | null {
  if (typeof schemaVersion !== "string") return "missing schemaVersion";
  const file = parseVersion(schemaVersion);
  const ours = parseVersion(SUPPORTED_SCHEMA);
  if (file[0] !== ours[0] || compareVersions(file, ours) > 0) {
    return `unsupported schemaVersion ${schemaVersion} (runner supports ${SUPPORTED_SCHEMA})`;
  }
  return null;
}
