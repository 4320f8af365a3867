import { validateClaims } from "@keyward/sdk/jose";
import { issuerClientId } from "../auth/issuer-client.js";
import { USER_ID } from "../users/user-rules.js";
import { createExternalJwks, type ExternalAlgorithm, type ExternalJwks } from "./external-jwks.js";
import { externalRefusal, type ParsedExternalJwt, parseExternalJwt, verifyExternalSignature } from "./external-jwt.js";
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
  /** Told once, at construction, of each issuer left on unprefixed user ids without opting in. */
  warn?: (message: string) => void;
}

interface Entry {
  config: TrustedIssuerConfig;
  prefix: string;
  /** Other entries' prefixes, which an unprefixed entry's ids may not begin with (issuer-namespaces.ts). */
  foreignPrefixes: readonly string[];
  clientId: string;
  algorithms: ReadonlySet<ExternalAlgorithm>;
  audiences: ReadonlySet<string>;
  jwks: ExternalJwks;
}

/**
 * Verifies JWTs from the identity providers in `trusted_issuers` (SPEC §8). The unverified `iss`
 * only picks the candidate entries; a token is trusted by the first of them whose own JWKS
 * verifies its signature and whose rules its claims meet, so an issuer listed once cannot vouch
 * for another by naming it. Every refusal is `invalid_grant`, including an issuer whose JWKS
 * cannot be loaded: the caller's token is what cannot be accepted, not our service that failed.
 */
export function createTrustedIssuers(deps: TrustedIssuersDeps) {
  const leewayS = deps.leewayS ?? 30;
  // config.ts refuses these at boot; checked again for any other caller, as ids would collide.
  const problem = namespaceProblem(deps.issuers);
  if (problem !== undefined) throw new Error(problem);
  for (const message of unprefixedWarnings(deps.issuers)) deps.warn?.(message);
  const prefixes = deps.issuers.flatMap((c) => (c.user_prefix === undefined ? [] : [c.user_prefix]));
  const byIssuer = new Map<string, Entry[]>();
  for (const config of deps.issuers) {
    const algorithms = new Set(config.algorithms);
    const entry: Entry = {
      config,
      prefix: config.user_prefix ?? "",
      foreignPrefixes: config.user_prefix === undefined ? prefixes : [],
      clientId: issuerClientId(config.issuer),
      algorithms,
      audiences: new Set(Array.isArray(config.audience) ? config.audience : [config.audience]),
      jwks: createExternalJwks({
        uri: config.jwks_uri,
        algorithms,
        fetch: deps.fetch ?? fetch,
        now: deps.now,
        cooldownMs: deps.cooldownMs ?? 5000,
        maxAgeMs: 3_600_000,
        timeoutMs: deps.timeoutMs ?? 5000,
      }),
    };
    byIssuer.set(config.issuer, [...(byIssuer.get(config.issuer) ?? []), entry]);
  }

  async function signatureHolds(entry: Entry, jwt: ParsedExternalJwt): Promise<boolean> {
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
    /** Throws `OAuthError` (`invalid_grant`) for any token we do not trust; never echoes it. */
    async verify(token: string): Promise<ExternalSubject> {
      const parsed = parseExternalJwt(token);
      if (!parsed.ok) throw new OAuthError("invalid_grant", externalRefusal(parsed));
      const jwt = parsed.value;
      const iss = jwt.unverifiedPayload.iss;
      const candidates = typeof iss === "string" ? byIssuer.get(iss) : undefined;
      if (!candidates) throw new OAuthError("invalid_grant", "the subject_token's issuer is not trusted");
      let refusal = "the subject_token's signature does not verify with the issuer's keys";
      for (const entry of candidates) {
        if (!(await signatureHolds(entry, jwt))) continue;
        const checked = checkClaims(entry, jwt.unverifiedPayload, Math.floor(deps.now() / 1000), leewayS);
        if (typeof checked !== "string") return checked;
        refusal = checked;
      }
      throw new OAuthError("invalid_grant", refusal);
    },
  };
}

export type TrustedIssuers = ReturnType<typeof createTrustedIssuers>;

/**
 * The claims of a token whose signature held. `exp` is required and gets no leeway: the minted
 * token may not outlive it anyway. `nbf` and `iat` get `leewayS` for clock skew between hosts.
 */
function checkClaims(
  entry: Entry,
  claims: Record<string, unknown>,
  nowS: number,
  leewayS: number,
): ExternalSubject | string {
  const registered = validateClaims(
    claims,
    { audience: entry.audiences, required: ["exp"], clockToleranceS: leewayS, expToleranceS: 0 },
    nowS,
  );
  if (!registered.ok) return externalRefusal(registered);
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
