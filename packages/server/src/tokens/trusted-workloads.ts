import { issuerClientId } from "../auth/issuer-client.js";
import { createExternalVerifier, createJwksPool, type JwksPool, type VerifierEntry } from "./external-verifier.js";
import { OAuthError } from "./oauth-errors.js";
import type { TrustedWorkloadConfig } from "./trusted-workloads-config.js";

/** A verified platform token, reduced to what the exchange needs. Carries no part of the token. */
export interface WorkloadIdentity {
  /** The agent the matching rule names: the minted token's `sub` is `agent:<agent>`. */
  agent: string;
  issuer: string;
  /** The platform token's `sub` (for the audit record), when it is a string. */
  subject: string | undefined;
  /** `idp:<hash of issuer and agent>`: the minted token's `client_id`, never a key id. */
  clientId: string;
  scopes: readonly string[];
  /** The platform token's `exp`, epoch seconds. */
  exp: number;
  lifetimeS: number;
}

export interface TrustedWorkloadsDeps {
  workloads: readonly TrustedWorkloadConfig[];
  now: () => number;
  /** Key-set caches shared with `trusted_issuers` (one per JWKS URI); default: a pool of its own. */
  jwks?: JwksPool;
  fetch?: typeof fetch;
  /** Clock skew allowed on `nbf` and `iat` (default 30 s); `exp` gets none. */
  leewayS?: number;
}

interface Rule extends VerifierEntry {
  config: TrustedWorkloadConfig;
  claims: readonly (readonly [string, string | number | boolean])[];
  clientId: string;
}

/**
 * Maps a platform's JWT (a Kubernetes service-account token, a CI job's OIDC token) to an agent by
 * the rules in `trusted_workloads`. The token is verified once by the shared external verification
 * (issuer's own JWKS, pinned algorithms, `aud`, `exp`); a rule then matches only by equality:
 * `sub` === `subject`, each configured claim === its value. No prefix, suffix, pattern or case
 * folding: `system:serviceaccount:ns:sa-evil` is not `system:serviceaccount:ns:sa`. A token that
 * matches rules of two different agents is refused rather than given either.
 */
export function createTrustedWorkloads(deps: TrustedWorkloadsDeps) {
  const pool = deps.jwks ?? createJwksPool(deps);
  const rules = deps.workloads.map((config): Rule => {
    const algorithms = new Set(config.algorithms);
    return {
      issuer: config.issuer,
      config,
      claims: Object.entries(config.claims ?? {}),
      clientId: issuerClientId(`${config.issuer}\u0000agent:${config.agent}`),
      algorithms,
      audiences: new Set(Array.isArray(config.audience) ? config.audience : [config.audience]),
      jwks: pool.get(config.jwks_uri, algorithms),
    };
  });
  const verifier = createExternalVerifier({
    entries: rules,
    now: deps.now,
    ...(deps.leewayS !== undefined ? { leewayS: deps.leewayS } : {}),
  });

  return {
    /** Whether the token's (unverified) `iss` is a workload issuer: routes a jwt exchange here. */
    names: verifier.names,

    /** Throws `OAuthError` (`invalid_grant`) for a token no rule accepts; never echoes it. */
    async verify(token: string): Promise<WorkloadIdentity> {
      const { claims, entries } = await verifier.verify(token);
      const matched = entries.filter((rule) => matches(rule, claims));
      const first = matched[0];
      if (first === undefined) throw new OAuthError("invalid_grant", "the token matches no trusted workload rule");
      if (matched.some((r) => r.config.agent !== first.config.agent)) {
        throw new OAuthError("invalid_grant", "the token matches trusted workload rules of more than one agent");
      }
      return {
        agent: first.config.agent,
        issuer: first.issuer,
        subject: typeof claims.sub === "string" ? claims.sub : undefined,
        clientId: first.clientId,
        scopes: first.config.scopes,
        exp: claims.exp as number,
        lifetimeS: first.config.token_lifetime_s,
      };
    },
  };
}

export type TrustedWorkloads = ReturnType<typeof createTrustedWorkloads>;

/** Exact equality only; a claim the token lacks never equals anything. */
function matches(rule: Rule, claims: Record<string, unknown>): boolean {
  if (rule.config.subject !== undefined && claims.sub !== rule.config.subject) return false;
  for (const [name, value] of rule.claims) {
    if (!Object.hasOwn(claims, name) || claims[name] !== value) return false;
  }
  return true;
}
