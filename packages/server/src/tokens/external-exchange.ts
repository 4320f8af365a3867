import type { AuditSink } from "../audit/audit-sink.js";
import type { AccessTokens } from "./access-tokens.js";
import { checkTargetAgent, exchangedExpiry, exchangedScopes, exchangedTokenResponse } from "./exchange-rules.js";
import { OAuthError } from "./oauth-errors.js";
import type { ExchangeRequest } from "./token-exchange.js";
import type { RequestMeta, TokenResponse } from "./tokens-service.js";
import type { TrustedIssuers } from "./trusted-issuers.js";

/** RFC 8693 §3: a JWT from another issuer. */
export const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";
/** The scopes come from the token's `trusted_issuers` entry. */
const WHOSE = "the trusted issuer's scopes";

export interface ExternalExchangeDeps {
  now: () => number;
  audit: AuditSink;
  access: AccessTokens;
  issuers: TrustedIssuers;
  agentExists: (name: string) => Promise<boolean>;
  /** Keyward's own issuer URL: the audience of a user token exchanged without one. */
  issuer: () => string;
  maxLifetimeS: number;
  onIssue?: () => void;
}

/**
 * RFC 8693 exchange of a trusted identity provider's JWT for a Keyward user token (SPEC §8):
 * `sub` = `user:<user_prefix><subject claim>` (trusted-issuers.ts), the issuer entry's scopes (a requested `scope` may narrow them),
 * `aud` = Keyward's issuer URL or the named agent, expiring no later than the external token nor
 * after `token_max_lifetime_s`. No actor and no refresh token: the user comes back with a fresh
 * JWT from their provider. The user's scopes must name the agent asked for, as in the exchange of
 * a Keyward user token, so the two ways to the same token hold the user to the same rule.
 */
export function createExternalExchange(deps: ExternalExchangeDeps) {
  return async function exchangeExternal(req: ExchangeRequest, meta: RequestMeta): Promise<TokenResponse> {
    if (req.actorToken !== undefined || req.actorTokenType !== undefined) {
      throw new OAuthError("invalid_request", "actor_token: not used with a jwt subject_token");
    }
    const subject = await deps.issuers.verify(req.subjectToken);
    const scopes = exchangedScopes(subject.scopes, req.scopes, WHOSE);
    const target = req.audience;
    if (target !== undefined) await checkTargetAgent(subject.scopes, target, deps.agentExists, WHOSE);
    const { exp, expiresIn } = exchangedExpiry(deps.now(), deps.maxLifetimeS, [subject.exp * 1000]);

    const sub = `user:${subject.userId}`;
    const aud = target ?? deps.issuer();
    const { token, claims } = deps.access.mint({ sub, aud, scopes, clientId: subject.clientId, exp });
    await deps.audit.recordToken({
      actor: sub,
      action: "token.exchange",
      target: target !== undefined ? `agent:${target}` : aud,
      outcome: "success",
      ip: meta.ip,
      requestId: meta.requestId,
      details: { grant: "jwt", issuer: subject.issuer, sub, jti: claims.jti, exp, scope: claims.scope },
    });
    deps.onIssue?.();
    return exchangedTokenResponse(token, expiresIn, claims.scope);
  };
}

export type ExternalExchange = ReturnType<typeof createExternalExchange>;
