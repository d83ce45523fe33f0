// runOnRequirements: whether a file or a test applies to the backend.
// A list is satisfied when ANY one entry is; file-level and test-level lists
// are evaluated separately and BOTH must be satisfied (spec "runOnRequirement").
import { numbersEqual, numericValue, show } from "./bson-values.js";
import { UnimplementedError } from "./errors.js";

export type Version = [number, number, number];
export type Topology = "single" | "replicaset" | "sharded" | "load-balanced";

/** What the runner knows about the backend. */
export interface ServerInfo {
  version: Version;
  topology: Topology;
  /** Atlas Serverless is never in use here; kept explicit for the rule. */
  serverless: boolean;
  auth: boolean;
  /** Data-bearing members besides the primary (0 on a single-node replica set). */
  secondaries: number;
  /** Lazily fetched `getParameter: '*'` reply; undefined when unavailable. */
  serverParameters: () => Promise<Record<string, unknown> | undefined>;
}

export type Requirement = Record<string, unknown>;
export type Verdict = { ok: true } | { ok: false; reason: string };

/** "4.2" means 4.2.0; anything past major.minor.patch (e.g. "-rc1") is dropped
 *  (spec "Version String"). */
export function parseVersion(text: string): Version {
  const parts = text
    .split(/[.-]/)
    .slice(0, 3)
    .map((p) => Number.parseInt(p, 10));
  if (parts.length === 0 || parts.some((p) => Number.isNaN(p))) throw new Error(`bad version string ${JSON.stringify(text)}`);
  return [parts[0] ?? 0, parts[1] ?? 0, parts[2] ?? 0];
}

export function compareVersions(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return 0;
}

export function formatVersion(v: Version): string {
  return v.join(".");
}

/** Why one requirement is not met, or null when it is. */
export async function unmetBecause(req: Requirement, server: ServerInfo): Promise<string | null> {
  for (const [key, value] of Object.entries(req)) {
    const reason = await checkKey(key, value, server);
    if (reason) return reason;
  }
  return null;
}

async function checkKey(key: string, value: unknown, server: ServerInfo): Promise<string | null> {
  const version = formatVersion(server.version);
  switch (key) {
    case "minServerVersion":
      return compareVersions(server.version, parseVersion(String(value))) < 0 ? `server ${version} < minServerVersion ${String(value)}` : null;
    case "maxServerVersion":
      return compareVersions(server.version, parseVersion(String(value))) > 0 ? `server ${version} > maxServerVersion ${String(value)}` : null;
    case "topologies": {
      const wanted = value as string[];
      // 3.6+ requires replica-set shards, so any sharded cluster qualifies.
      const ok = wanted.includes(server.topology) || (server.topology === "sharded" && wanted.includes("sharded-replicaset"));
      return ok ? null : `topology ${server.topology} not in [${wanted.join(", ")}]`;
    }
    case "serverless":
      if (value === "require" && !server.serverless) return "serverless required, backend is not serverless";
      if (value === "forbid" && server.serverless) return "serverless forbidden, backend is serverless";
      return null;
    case "auth":
      return value === server.auth ? null : `auth ${String(value)} required, backend auth is ${String(server.auth)}`;
    case "csfle":
      // No libmongocrypt / mongocryptd here: CSFLE is never supported.
      return value === true ? "csfle required, not available to this runner" : null;
    case "authMechanism": {
      const params = await server.serverParameters();
      const mechs = params?.authenticationMechanisms;
      const list = Array.isArray(mechs) ? mechs.map((m) => String(m).toLowerCase()) : [];
      return list.includes(String(value).toLowerCase()) ? null : `authMechanism ${String(value)} not among server authenticationMechanisms`;
    }
    case "serverParameters": {
      const params = await server.serverParameters();
      for (const [name, expected] of Object.entries(value as Record<string, unknown>)) {
        const actual = params?.[name];
        if (actual === undefined) return `server parameter ${name} unavailable`;
        if (!parameterEquals(expected, actual)) return `server parameter ${name} is ${show(actual)}, needs ${show(expected)}`;
      }
      return null;
    }
    default:
      throw new UnimplementedError(`runOnRequirement key ${key}`);
  }
}

function parameterEquals(expected: unknown, actual: unknown): boolean {
  const e = numericValue(expected);
  const a = numericValue(actual);
  if (e !== undefined && a !== undefined) return numbersEqual(e, a);
  return JSON.stringify(expected) === JSON.stringify(actual);
}

/** Satisfied when the list is absent or any entry is met. */
export async function evaluateRequirements(reqs: Requirement[] | undefined, server: ServerInfo): Promise<Verdict> {
  if (!reqs || reqs.length === 0) return { ok: true };
  const reasons: string[] = [];
  for (const req of reqs) {
    const reason = await unmetBecause(req, server);
    if (!reason) return { ok: true };
    reasons.push(`${JSON.stringify(req)}: ${reason}`);
  }
  return { ok: false, reason: reasons.join("; ") };
}
