/**
 * Optional JWT access control for the flow routes (subscribe, snapshot).
 *
 * Off unless a key is configured. When on, every request to a flow route needs
 * a token, taken from (first found wins):
 *   1. `Authorization: Bearer <jwt>`                 best: never in URLs or logs of proxies
 *   2. the cookie AUTH_COOKIE (default flowsync_token) for EventSource with `withCredentials`
 *   3. `?access_token=<jwt>` (unless AUTH_QUERY_TOKEN=false): EventSource cannot set headers,
 *      but the URL (and so the token) may land in proxy logs and browser history
 *
 * Keys: HS256 with AUTH_JWT_SECRET; RS256/ES256 with a JWKS from AUTH_JWKS_FILE or
 * AUTH_JWKS_URL (fetched and cached by jose). The token's `alg` picks the key
 * source; `alg: none` and any other algorithm are refused. `exp` is required:
 * a stream is closed when its token expires (sse-stream.ts), so a token without
 * one would be a token that never stops reading.
 *
 * Which flows: the claim AUTH_FLOWS_CLAIM (default `flows`), a string or an array
 * of strings. Each is a flowId, or a pattern in which `*` stands for any run of
 * characters (`team-1/*`, `*` = every flow). Matching is linear-time (no regular
 * expressions built from token data).
 *
 *   no/invalid token → 401 E_UNAUTHORIZED (with WWW-Authenticate: Bearer)
 *   valid, flow not granted (or no usable claim) → 403 E_FORBIDDEN
 *
 * Admin: the claim AUTH_ADMIN_CLAIM (default `flowsync_admin`) set to `true` lets a
 * token list this instance's flows (`GET …/flows`); any other token gets 403 E_ADMIN_REQUIRED.
 */
import { readFile } from "node:fs/promises";
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { FlowsyncError } from "../errors";

export interface AuthOptions {
  /** HS256 shared secret (UTF-8), at least 32 bytes. */
  secret?: string;
  /** A JWKS document on disk (RS256 / ES256 public keys). */
  jwksFile?: string;
  /** A JWKS URL (RS256 / ES256 public keys), fetched on demand and cached. */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** The claim naming the readable flows. */
  claim: string;
  /** The claim that, when `true`, makes a token an admin's (the flows list, `GET …/flows`). */
  adminClaim: string;
  /** Cookie that may carry the token. */
  cookie: string;
  /** Whether `?access_token=` is accepted. */
  queryToken: boolean;
  clockToleranceS: number;
  /** Claims that may be shown to other users (presence); every other claim stays here. */
  publicClaims?: readonly string[];
}

/** What a verified token allows. */
export interface Grant {
  readonly subject: string | undefined;
  /** The token's public claims (`publicClaims`) that are a string, number or boolean; nothing else from it. */
  readonly claims: Readonly<Record<string, string | number | boolean>>;
  /** When the token expires (ms since the epoch): streams opened with it end then. */
  readonly expiresAt: number;
  /** The token's admin claim (AUTH_ADMIN_CLAIM) is `true`. */
  readonly admin: boolean;
  allows(flowId: string): boolean;
}

/** Where the token may come from, as read off a request. */
export interface TokenSources {
  authorization: string | undefined;
  cookie: string | undefined;
  query: unknown;
}

export interface Authenticator {
  /** The cookie that may carry the token. */
  readonly cookie: string;
  /** Verifies the request's token; throws E_UNAUTHORIZED. */
  authenticate(sources: TokenSources): Promise<Grant>;
  /** authenticate + the flow check; throws E_UNAUTHORIZED or E_FORBIDDEN. */
  authorize(sources: TokenSources, flowId: string): Promise<Grant>;
}

const ASYMMETRIC = ["RS256", "ES256"] as const;
/** Tokens longer than this are refused before any parsing (headers are capped at 16 KiB anyway). */
const MAX_TOKEN_LENGTH = 8192;
const MAX_PATTERNS = 1000;

/** Whether any key is configured, i.e. whether auth is on. */
export function authEnabled(o: Pick<AuthOptions, "secret" | "jwksFile" | "jwksUrl">): boolean {
  return Boolean(o.secret || o.jwksFile || o.jwksUrl);
}

export async function createAuthenticator(o: AuthOptions): Promise<Authenticator> {
  if (o.jwksFile && o.jwksUrl) throw new FlowsyncError("E_CONFIG_INVALID", "set AUTH_JWKS_FILE or AUTH_JWKS_URL, not both");
  const secret = o.secret ? new TextEncoder().encode(o.secret) : undefined;
  let jwks: JWTVerifyGetKey | undefined;
  if (o.jwksFile) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(o.jwksFile, "utf8"));
    } catch (err) {
      throw new FlowsyncError("E_CONFIG_INVALID", `AUTH_JWKS_FILE ${o.jwksFile}: ${(err as Error).message}`, { cause: err });
    }
    try {
      jwks = createLocalJWKSet(parsed as Parameters<typeof createLocalJWKSet>[0]);
    } catch (err) {
      throw new FlowsyncError("E_CONFIG_INVALID", `AUTH_JWKS_FILE ${o.jwksFile} is not a JWKS: ${(err as Error).message}`, { cause: err });
    }
  } else if (o.jwksUrl) {
    jwks = createRemoteJWKSet(new URL(o.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
  }
  const algorithms = [...(secret ? ["HS256"] : []), ...(jwks ? ASYMMETRIC : [])];

  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === "HS256" && secret) return secret;
    if (jwks && (ASYMMETRIC as readonly string[]).includes(header.alg)) return jwks(header, token);
    throw new joseErrors.JOSEAlgNotAllowed(`"alg" (Algorithm) Header Parameter value not allowed`);
  };

  const authenticate = async (sources: TokenSources): Promise<Grant> => {
    const token = tokenOf(sources, o);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        algorithms,
        issuer: o.issuer,
        audience: o.audience,
        requiredClaims: ["exp"],
        clockTolerance: o.clockToleranceS,
      }));
    } catch (err) {
      throw unauthorized(describeJoseError(err), err);
    }
    const patterns = flowPatterns(payload[o.claim]);
    const claims: Record<string, string | number | boolean> = {};
    for (const name of o.publicClaims ?? []) {
      const value = payload[name];
      if (typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value))) claims[name] = value;
    }
    return {
      subject: typeof payload.sub === "string" ? payload.sub : undefined,
      claims,
      expiresAt: (payload.exp as number) * 1000,
      // Exactly `true`: a string "false" or a 1 must not pass for one.
      admin: payload[o.adminClaim] === true,
      allows: (flowId) => patterns.some((p) => globMatch(p, flowId)),
    };
  };

  return {
    cookie: o.cookie,
    authenticate,
    async authorize(sources, flowId) {
      const grant = await authenticate(sources);
      if (!grant.allows(flowId)) {
        throw new FlowsyncError("E_FORBIDDEN", `the token does not grant flow '${flowId}' (claim '${o.claim}')`);
      }
      return grant;
    },
  };
}

function tokenOf({ authorization, cookie, query }: TokenSources, o: AuthOptions): string {
  let token: string | undefined;
  if (authorization !== undefined && authorization !== "") {
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    if (!match) throw unauthorized("the Authorization header must be 'Bearer <token>'");
    token = match[1];
  } else if (cookie !== undefined && cookie !== "") {
    token = cookie;
  } else if (o.queryToken && query !== undefined) {
    if (typeof query !== "string") throw unauthorized("access_token must be given once");
    token = query;
  }
  if (token === undefined || token === "") {
    throw unauthorized(`a token is required (Authorization: Bearer, the '${o.cookie}' cookie${o.queryToken ? " or ?access_token=" : ""})`);
  }
  if (token.length > MAX_TOKEN_LENGTH) throw unauthorized("the token is too long");
  return token;
}

function unauthorized(message: string, cause?: unknown): FlowsyncError {
  return new FlowsyncError("E_UNAUTHORIZED", message, {
    cause,
    headers: { "WWW-Authenticate": `Bearer realm="flowsync", error="invalid_token"` },
  });
}

/** A short, token-free reason (jose messages never echo the token, but keep them tidy). */
function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "the token has expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `the token's '${err.claim}' claim is not acceptable (${err.reason})`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "the token's algorithm is not accepted";
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  if (err instanceof joseErrors.JWKSNoMatchingKey) return "no key matches the token";
  if (err instanceof joseErrors.JWKSTimeout) return "the key set could not be fetched in time";
  return "the token is not valid";
}

/** The claim as a list of patterns; anything unusable grants nothing. */
export function flowPatterns(claim: unknown): string[] {
  const list = typeof claim === "string" ? [claim] : Array.isArray(claim) ? claim : [];
  return list.filter((p): p is string => typeof p === "string" && p.length > 0 && p.length <= 512).slice(0, MAX_PATTERNS);
}

/**
 * `*` matches any run of characters (also none); everything else matches itself.
 * Iterative with one backtrack point: O(pattern × text) at worst, no regex.
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== "*" && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      resume = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}
