import { issuerClientId } from "../auth/issuer-client.js";
import { USER_ID } from "../users/user-rules.js";
import { createExternalVerifier, createJwksPool, type JwksPool, type VerifierEntry } from "./external-verifier.js";
import { namespaceProblem, unprefixedWarnings } from "./issuer-namespaces.js";
import { OAuthError } from "./oauth-errors.js";
import type { TrustedIssuerConfig } from "./trusted-issuers-config.js";

/** A verified external JWT, reduced to what the exchange needs. Carries no part of the token. */
export interface ExternalSubject {
  /** The `issuer` of the entry whose keys verified the token. */
  issuer: string;
  /** `idp:<hash of issuer>`: the minted token's `client_id`, never a key id. */
  clientId: string;
  /** The entry's `user_prefix` and the subject claim's value: the minted token's `sub` is `user:<userId>`. */
  userId: string;
  /** The external token's `exp`, epoch seconds. */
  exp: number;
  /** The entry's configured scopes. */
  scopes: readonly string[];
}

export interface TrustedIssuersDeps {
  issuers: readonly TrustedIssuerConfig[];
  now: () => number;
  fetch?: typeof fetch;
  /** Clock skew allowed on `nbf` and `iat` (default 30 s); `exp` gets none, see below. */
  leewayS?: number;
  /** At most one JWKS refetch for unknown kids per issuer per this many ms (default 5 s). */
  cooldownMs?: number;
  /** JWKS fetch timeout (default 5 s). */
  timeoutMs?: number;
  /** Key-set caches shared with `trusted_workloads` (one per JWKS URI); default: a pool of its own. */
  jwks?: JwksPool;
  /** Told once, at construction, of each issuer left on unprefixed user ids without opting in. */
  warn?: (message: string) => void;
}

interface Entry extends VerifierEntry {
  config: TrustedIssuerConfig;
  prefix: string;
  /** Other entries' prefixes, which an unprefixed entry's ids may not begin with (issuer-namespaces.ts). */
  foreignPrefixes: readonly string[];
  clientId: string;
}

/**
 * Verifies JWTs from the identity providers in `trusted_issuers` (SPEC §8), by the one external
 * verification (external-verifier.ts); a token is trusted by the first entry whose keys verify it
 * and whose rules its claims meet. Every refusal is `invalid_grant`, including an issuer whose
 * JWKS cannot be loaded: the caller's token is what cannot be accepted, not our service that failed.
 */
export function createTrustedIssuers(deps: TrustedIssuersDeps) {
  // config.ts refuses these at boot; checked again for any other caller, as ids would collide.
  const problem = namespaceProblem(deps.issuers);
  if (problem !== undefined) throw new Error(problem);
  for (const message of unprefixedWarnings(deps.issuers)) deps.warn?.(message);
  const prefixes = deps.issuers.flatMap((c) => (c.user_prefix === undefined ? [] : [c.user_prefix]));
  const pool = deps.jwks ?? createJwksPool(deps);
  const entries = deps.issuers.map((config): Entry => {
    const algorithms = new Set(config.algorithms);
    return {
      issuer: config.issuer,
      config,
      prefix: config.user_prefix ?? "",
      foreignPrefixes: config.user_prefix === undefined ? prefixes : [],
      clientId: issuerClientId(config.issuer),
      algorithms,
      audiences: new Set(Array.isArray(config.audience) ? config.audience : [config.audience]),
      jwks: pool.get(config.jwks_uri, algorithms),
    };
  });
  const verifier = createExternalVerifier({
    entries,
    now: deps.now,
    ...(deps.leewayS !== undefined ? { leewayS: deps.leewayS } : {}),
  });

  return {
    /**
     * Throws `OAuthError` (`invalid_grant`) for any token we do not trust; never echoes it.
     * `expect` narrows it for an OIDC sign-in (oauth/): the ID token must come from that issuer,
     * be issued to that client and carry the nonce the sign-in request was sent with.
     */
    async verify(
      token: string,
      expect: { issuer?: string; nonce?: string; audience?: string } = {},
    ): Promise<ExternalSubject> {
      const verified = await verifier.verify(token);
      if (expect.issuer !== undefined && verified.claims.iss !== expect.issuer) {
        throw new OAuthError("invalid_grant", "the token comes from another issuer than the sign-in's");
      }
      // OIDC Core §3.1.3.7: an ID token names the client it was issued to among its audiences;
      // the entry may accept other audiences (for token exchange), the sign-in only its own.
      const aud = verified.claims.aud;
      if (
        expect.audience !== undefined &&
        aud !== expect.audience &&
        !(Array.isArray(aud) && aud.includes(expect.audience))
      ) {
        throw new OAuthError("invalid_grant", "the ID token was not issued to the sign-in's client");
      }
      if (expect.nonce !== undefined && verified.claims.nonce !== expect.nonce) {
        throw new OAuthError("invalid_grant", "the ID token's nonce does not match the sign-in request's");
      }
      let refusal = "";
      for (const entry of verified.entries) {
        const subject = userOf(entry, verified.claims);
        if (typeof subject !== "string") return subject;
        refusal = subject;
      }
      throw new OAuthError("invalid_grant", refusal);
    },
  };
}

export type TrustedIssuers = ReturnType<typeof createTrustedIssuers>;

/** The user a verified token names under `entry`'s rules, or the refusal. */
function userOf(entry: Entry, claims: Record<string, unknown>): ExternalSubject | string {
  const exp = claims.exp as number;
  const claim = entry.config.subject_claim;
  // An unverified address is whatever the user typed at the provider: someone else's, perhaps.
  // Strictly the boolean: a provider sending "true" is not following OIDC Core §5.1.
  if (claim === "email" && claims.email_verified !== true) {
    return "the subject_token's email is not verified (email_verified must be true)";
  }
  const subject = claims[claim];
  if (typeof subject !== "string" || !USER_ID.test(subject)) {
    return `the subject_token's ${claim} claim is not a valid user id`;
  }
  const userId = entry.prefix + subject;
  if (!USER_ID.test(userId)) return `the subject_token's ${claim} claim is too long for a user id with user_prefix`;
  if (entry.foreignPrefixes.some((p) => userId.startsWith(p))) {
    return `the subject_token's ${claim} claim begins with another issuer's user_prefix`;
  }
  return {
    issuer: entry.config.issuer,
    clientId: entry.clientId,
    userId,
    exp,
    scopes: entry.config.scopes,
  };
}
