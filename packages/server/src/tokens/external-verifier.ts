import { validateClaims } from "@keyward/sdk/jose";
import { createExternalJwks, type ExternalAlgorithm, type ExternalJwks } from "./external-jwks.js";
import { externalRefusal, type ParsedExternalJwt, parseExternalJwt, verifyExternalSignature } from "./external-jwt.js";
import { OAuthError } from "./oauth-errors.js";

/**
 * The one verification of other issuers' JWTs, shared by `trusted_issuers` (users, SPEC §8) and
 * `trusted_workloads` (agents): header policy, pinned algorithms, the issuer's own JWKS, `aud`,
 * `exp` (no leeway), `nbf`/`iat` (leeway). What a verified token then becomes (a user, an agent)
 * is the caller's rule, applied to the entries this returns.
 */
export interface VerifierEntry {
  issuer: string;
  jwks: ExternalJwks;
  /** The `aud` the token must carry (one of them). */
  audiences: ReadonlySet<string>;
  algorithms: ReadonlySet<ExternalAlgorithm>;
}

export interface JwksPoolDeps {
  now: () => number;
  fetch?: typeof fetch;
  /** At most one JWKS refetch for unknown kids per key set per this many ms (default 5 s). */
  cooldownMs?: number;
  /** JWKS fetch timeout (default 5 s). */
  timeoutMs?: number;
}

/**
 * One key-set cache per (`jwks_uri`, algorithms): entries of both lists that name the same
 * issuer keys share one cache, so a cluster's JWKS is fetched once however many rules use it.
 */
export function createJwksPool(deps: JwksPoolDeps) {
  const sets = new Map<string, ExternalJwks>();
  return {
    get(uri: string, algorithms: ReadonlySet<ExternalAlgorithm>): ExternalJwks {
      const id = `${[...algorithms].sort().join(",")} ${uri}`;
      let jwks = sets.get(id);
      if (jwks === undefined) {
        jwks = createExternalJwks({
          uri,
          algorithms,
          fetch: deps.fetch ?? fetch,
          now: deps.now,
          cooldownMs: deps.cooldownMs ?? 5000,
          maxAgeMs: 3_600_000,
          timeoutMs: deps.timeoutMs ?? 5000,
        });
        sets.set(id, jwks);
      }
      return jwks;
    },
  };
}

export type JwksPool = ReturnType<typeof createJwksPool>;

export interface VerifiedExternal<E> {
  /** Verified: the signature held and the registered claims passed for each of `entries`. */
  claims: Record<string, unknown>;
  /** The candidate entries (same `iss`) for which the token held, in configuration order. */
  entries: readonly E[];
}

/**
 * Verifies against `entries` grouped by issuer. The unverified `iss` only picks the candidates; a
 * token is trusted for an entry only if that entry's own JWKS verifies it, so an issuer listed
 * once cannot vouch for another by naming it. Every refusal is `invalid_grant` with a fixed phrase
 * (external-jwt.ts), including an issuer whose JWKS cannot be loaded.
 */
export function createExternalVerifier<E extends VerifierEntry>(opts: {
  entries: readonly E[];
  now: () => number;
  /** Clock skew allowed on `nbf` and `iat` (default 30 s). */
  leewayS?: number;
}) {
  const leewayS = opts.leewayS ?? 30;
  const byIssuer = new Map<string, E[]>();
  for (const e of opts.entries) byIssuer.set(e.issuer, [...(byIssuer.get(e.issuer) ?? []), e]);

  async function signatureHolds(entry: E, jwt: ParsedExternalJwt): Promise<boolean> {
    let key = entry.jwks.get(jwt.kid);
    if (key === undefined) {
      try {
        key = await entry.jwks.resolveMissing(jwt.kid);
      } catch {
        throw new OAuthError("invalid_grant", "the subject_token's issuer keys could not be loaded");
      }
    }
    return key !== undefined && verifyExternalSignature(jwt, key, entry.algorithms).ok;
  }

  return {
    /** The unverified `iss` names one of the entries' issuers (to route a token, never to trust it). */
    names(token: string): boolean {
      const parsed = parseExternalJwt(token);
      if (!parsed.ok) return false;
      const iss = parsed.value.unverifiedPayload.iss;
      return typeof iss === "string" && byIssuer.has(iss);
    },

    /** Throws `OAuthError` (`invalid_grant`) unless at least one entry accepts the token; never echoes it. */
    async verify(token: string): Promise<VerifiedExternal<E>> {
      const parsed = parseExternalJwt(token);
      if (!parsed.ok) throw new OAuthError("invalid_grant", externalRefusal(parsed));
      const jwt = parsed.value;
      const iss = jwt.unverifiedPayload.iss;
      const candidates = typeof iss === "string" ? byIssuer.get(iss) : undefined;
      if (!candidates) throw new OAuthError("invalid_grant", "the subject_token's issuer is not trusted");
      // The refusal reported: a claim failure of an entry the token was meant for (its audience)
      // says more than "meant for another audience" from a sibling rule, which says more than
      // a signature that held nowhere.
      let refusal: string | undefined;
      let audienceRefusal: string | undefined;
      const held = new Map<ExternalJwks, boolean>();
      const passed: E[] = [];
      const nowS = Math.floor(opts.now() / 1000);
      for (const entry of candidates) {
        let ok = held.get(entry.jwks);
        if (ok === undefined) {
          ok = await signatureHolds(entry, jwt);
          held.set(entry.jwks, ok);
        }
        if (!ok) continue;
        // `exp` is required and gets no leeway: the minted token may not outlive it anyway.
        const registered = validateClaims(
          jwt.unverifiedPayload,
          { audience: entry.audiences, required: ["exp"], clockToleranceS: leewayS, expToleranceS: 0 },
          nowS,
        );
        if (registered.ok) passed.push(entry);
        else if (registered.code === "wrong_audience") audienceRefusal = externalRefusal(registered);
        else refusal = externalRefusal(registered);
      }
      if (passed.length === 0) {
        throw new OAuthError(
          "invalid_grant",
          refusal ?? audienceRefusal ?? "the subject_token's signature does not verify with the issuer's keys",
        );
      }
      return { claims: jwt.unverifiedPayload, entries: passed };
    },
  };
}
