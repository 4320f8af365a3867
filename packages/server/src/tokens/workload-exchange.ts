import type { AuditSink } from "../audit/audit-sink.js";
import type { AccessTokens } from "./access-tokens.js";
import { exchangedExpiry, exchangedScopes, exchangedTokenResponse } from "./exchange-rules.js";
import { OAuthError } from "./oauth-errors.js";
import type { RequestMeta, TokenResponse } from "./tokens-service.js";
import type { TrustedWorkloads } from "./trusted-workloads.js";

/** RFC 7523 §2.1: the JWT bearer grant, the platform token as `assertion`. */
export const GRANT_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";

const WHOSE = "the trusted workload's scopes";

export interface WorkloadExchangeDeps {
  now: () => number;
  audit: AuditSink;
  access: AccessTokens;
  workloads: TrustedWorkloads;
  agentExists: (name: string) => Promise<boolean>;
  /** Keyward's issuer URL: the minted token's `aud`, so it works where the agent's key does. */
  issuer: () => string;
  maxLifetimeS: number;
  onIssue?: () => void;
}

export interface WorkloadRequest {
  token: string;
  scopes?: string[] | undefined;
  grant: "jwt-bearer" | "token-exchange";
}

/**
 * A platform token (`trusted_workloads`) exchanged for the agent's own access token: `sub` =
 * `agent:<name>`, `aud` = Keyward's issuer, so the caller authentication every agent endpoint
 * already uses (auth/caller-auth.ts) accepts it as the agent, with no rule of its own. It lives
 * at most the rule's `token_lifetime_s`, `token_max_lifetime_s`, and never past the platform
 * token; no refresh token (the platform rotates its token; the agent exchanges the new one).
 */
export function createWorkloadExchange(deps: WorkloadExchangeDeps) {
  return async function exchangeWorkload(req: WorkloadRequest, meta: RequestMeta): Promise<TokenResponse> {
    const identity = await deps.workloads.verify(req.token);
    // A deleted agent's rule stays in the config file: it mints nothing.
    if (!(await deps.agentExists(identity.agent))) {
      throw new OAuthError("invalid_grant", "the trusted workload's agent does not exist");
    }
    const scopes = exchangedScopes(identity.scopes, req.scopes, WHOSE);
    const lifetimeS = Math.min(deps.maxLifetimeS, identity.lifetimeS);
    const { exp, expiresIn } = exchangedExpiry(deps.now(), lifetimeS, [identity.exp * 1000]);
    const sub = `agent:${identity.agent}`;
    const aud = deps.issuer();
    const { token, claims } = deps.access.mint({ sub, aud, scopes, clientId: identity.clientId, exp });
    await deps.audit.recordToken({
      actor: sub,
      action: "token.exchange",
      target: aud,
      outcome: "success",
      ip: meta.ip,
      requestId: meta.requestId,
      details: {
        grant: req.grant === "jwt-bearer" ? "workload_jwt_bearer" : "workload_token_exchange",
        issuer: identity.issuer,
        subject: identity.subject,
        jti: claims.jti,
        exp,
        scope: claims.scope,
      },
    });
    deps.onIssue?.();
    return exchangedTokenResponse(token, expiresIn, claims.scope);
  };
}

export type WorkloadExchange = ReturnType<typeof createWorkloadExchange>;
