import { verifySignature } from "../jose/algorithms.js";
import { decodePayload } from "../jose/compact.js";
import { lowSToken } from "../jose/low-s.js";
import { checkClaims, type VerifiedToken } from "./claims.js";
import { createCompactParser, type VerifyAlgorithm } from "./compact.js";
import { invalid, refusal, TokenVerificationError } from "./errors.js";
import { createJwksCache } from "./jwks.js";
import { KEYWARD_KID, keywardJwkImporter } from "./keyward-jwk.js";
import { createResultCache } from "./result-cache.js";

export interface VerifierOptions {
  /** The issuer URL, compared exactly with `iss` (Keyward's `KEYWARD_ISSUER` or its listening URL). */
  issuer: string;
  /** This service's name as Keyward's tokens name it in `aud` (for an agent: the agent's name). */
  audience: string | readonly string[];
  /** Default `${issuer}/.well-known/jwks.json`. */
  jwksUri?: string;
  /** Leeway for `exp`, `nbf` and `iat` against clock skew between hosts, in seconds. Default 5. */
  clockToleranceS?: number;
  /** Scopes the middleware requires on every request (403 `scope_denied` otherwise). Default none. */
  requiredScopes?: readonly string[];
  /** Accepted signature algorithms. Default `["ES256"]`; add `"EdDSA"` only if the issuer signs with it. */
  algorithms?: readonly VerifyAlgorithm[];
  /** The fetch used for the JWKS. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** How many verified tokens to remember (each until it expires). Default 10,000; 0 turns the cache off. */
  cacheSize?: number;
  /** At most one JWKS refetch for unknown kids per this many seconds. Default 30. */
  jwksCooldownS?: number;
  /** The JWKS is refreshed in the background once older than this. Default 600. */
  jwksMaxAgeS?: number;
  /** Timeout of one JWKS request, in milliseconds. Default 5000. */
  jwksTimeoutMs?: number;
  /** The clock, in milliseconds since the epoch (tests freeze it). Default `Date.now`. */
  now?: () => number;
}

export interface Verifier {
  /**
   * Verifies a compact access token: signature (pinned algorithm, key from the JWKS by `kid`),
   * `typ`, `iss`, `aud`, `exp`/`nbf`/`iat`. Rejects with `TokenVerificationError` for a bad token
   * and `JwksUnavailableError` while the issuer's keys cannot be loaded.
   */
  verify(token: string): Promise<VerifiedToken>;
  /** As `verify`, from an `Authorization` header value (`Bearer <token>`). */
  verifyHeader(authorization: string | null | undefined): Promise<VerifiedToken>;
  /** The scopes the middleware requires by default. */
  readonly requiredScopes: readonly string[];
  /** Loads the JWKS now, e.g. at start-up so the first request does not wait for it. */
  refresh(): Promise<void>;
}

const DEFAULT_TOLERANCE_S = 5;
const DEFAULT_CACHE_SIZE = 10_000;
const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * Creates a verifier for Keyward access tokens (RFC 9068 JWTs, `typ: at+jwt`, ES256).
 *
 * The issuer's JWKS is fetched on first use and kept in memory; a token signed by a key not in it
 * causes at most one refetch per `jwksCooldownS`. `kid` is only a lookup key, and tokens carrying
 * `jku`, `x5u`, `jwk`, `x5c` or `crit` headers are refused. With a warm key set a verification is
 * one native signature check, or a map lookup when the same token was verified before (results are
 * cached until the token expires, re-checking expiry on every hit).
 *
 * @example
 * ```ts
 * import { verifier } from "@keyward/sdk";
 *
 * const v = verifier({ issuer: "https://keyward.internal", audience: "research-agent" });
 * const token = await v.verifyHeader(req.headers.authorization);
 * console.log(token.subject, token.scopes, token.actor);
 * ```
 */
export function verifier(options: VerifierOptions): Verifier {
  const o = validate(options);
  const now = options.now ?? Date.now;
  const algorithms = new Set<VerifyAlgorithm>(options.algorithms ?? ["ES256"]);
  const jwks = createJwksCache({
    uri: o.jwksUri,
    importKey: keywardJwkImporter(algorithms),
    fetch: options.fetch ?? globalThis.fetch,
    now,
    cooldownMs: o.cooldownS * 1000,
    maxAgeMs: o.maxAgeS * 1000,
    timeoutMs: o.timeoutMs,
    refetchableKid: KEYWARD_KID,
  });
  const rules = { issuer: options.issuer, audiences: new Set(o.audiences), toleranceS: o.toleranceS };
  const results = createResultCache(o.cacheSize);
  const parseCompact = createCompactParser(algorithms);

  /** The cached result under `cacheKey`, re-checked for expiry and for its key still being published. */
  function cached(cacheKey: string): VerifiedToken | undefined {
    const hit = results.get(cacheKey);
    if (!hit) return undefined;
    if (now() / 1000 >= hit.token.expiresAt + o.toleranceS) {
      results.delete(cacheKey);
      throw new TokenVerificationError("token_expired", "the access token has expired");
    }
    if (jwks.get(hit.kid) === hit.key) return hit.token;
    results.delete(cacheKey);
    return undefined;
  }

  async function verify(token: string): Promise<VerifiedToken> {
    const hit = cached(token);
    if (hit) return hit;

    const parsed = parseCompact(token);
    // A high-S ES256 token is cached, and looked up, under its low-S twin (jose/low-s.ts): that entry
    // was made by verifying a signature over these very bytes, and both twins verify alike.
    const twin = parsed.alg === "ES256" ? lowSToken(parsed.signingInput, parsed.signature) : undefined;
    const twinHit = twin !== undefined ? cached(twin) : undefined;
    if (twinHit) return twinHit;
    const key = jwks.get(parsed.kid) ?? (await jwks.resolveMissing(parsed.kid));
    if (!key) throw invalid("the access token is signed by a key the issuer does not publish");
    const signed = verifySignature(parsed, key);
    if (!signed.ok) throw refusal(signed);
    // Parsed only once the signature holds, so unauthenticated JSON never reaches the claim checks.
    const claims = decodePayload(parsed);
    if (!claims.ok) throw invalid("the access token payload is not a JSON object");
    const verified = checkClaims(claims.value, rules, now() / 1000);
    results.set(twin ?? token, { token: verified, kid: parsed.kid, key });
    return verified;
  }

  return {
    verify,
    verifyHeader(authorization) {
      // Not a string: absent, or a repeated header some frameworks hand over as an array.
      if (typeof authorization !== "string" || authorization.trim() === "") {
        return Promise.reject(
          new TokenVerificationError("missing_credentials", "send Authorization: Bearer <access token>"),
        );
      }
      const token = BEARER.exec(authorization)?.[1];
      if (token === undefined) {
        return Promise.reject(invalid("the Authorization header must be Bearer <access token>"));
      }
      return verify(token);
    },
    requiredScopes: Object.freeze([...(options.requiredScopes ?? [])]),
    refresh: () => jwks.refresh(),
  };
}

/** Configuration mistakes fail at construction, naming the option, rather than on the first request. */
function validate(options: VerifierOptions) {
  if (typeof options?.issuer !== "string" || options.issuer.length === 0) {
    throw new TypeError("verifier: issuer must be a non-empty string");
  }
  const audiences = typeof options.audience === "string" ? [options.audience] : [...(options.audience ?? [])];
  if (audiences.length === 0 || !audiences.every((a) => typeof a === "string" && a.length > 0)) {
    throw new TypeError("verifier: audience must be a non-empty string or list of strings");
  }
  const jwksUri = options.jwksUri ?? `${options.issuer.replace(/\/+$/, "")}/.well-known/jwks.json`;
  if (!isHttpUrl(jwksUri)) {
    throw new TypeError(
      options.jwksUri === undefined
        ? "verifier: issuer must be an http(s) URL (or pass jwksUri)"
        : "verifier: jwksUri must be an http(s) URL",
    );
  }
  for (const alg of options.algorithms ?? []) {
    if (alg !== "ES256" && alg !== "EdDSA") throw new TypeError('verifier: algorithms may only hold "ES256", "EdDSA"');
  }
  if (options.algorithms?.length === 0) throw new TypeError("verifier: algorithms must not be empty");
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== "function") throw new TypeError("verifier: no fetch available; pass options.fetch");
  return {
    audiences,
    jwksUri,
    toleranceS: nonNegative("clockToleranceS", options.clockToleranceS, DEFAULT_TOLERANCE_S),
    cacheSize: cacheSize(options.cacheSize),
    cooldownS: nonNegative("jwksCooldownS", options.jwksCooldownS, 30),
    maxAgeS: nonNegative("jwksMaxAgeS", options.jwksMaxAgeS, 600),
    timeoutMs: Math.max(1, nonNegative("jwksTimeoutMs", options.jwksTimeoutMs, 5000)),
  };
}

/** The result cache's index is sized to its bound up front (cache/bounded-cache.ts): a typo must not allocate gigabytes. */
const MAX_CACHE_SIZE = 1_000_000;

function cacheSize(value: number | undefined): number {
  const size = Math.floor(nonNegative("cacheSize", value, DEFAULT_CACHE_SIZE));
  if (size > MAX_CACHE_SIZE) throw new TypeError(`verifier: cacheSize must be at most ${MAX_CACHE_SIZE}`);
  return size;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`verifier: ${name} must be a non-negative number`);
  }
  return value;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:";
  } catch {
    return false;
  }
}
