import type { AuditSink } from "../audit/audit-sink.js";
import { KEYWARD, type Place } from "../auth/audience.js";
import type { Caller, CallerAuth } from "../auth/caller-auth.js";
import type { KeyEntry } from "../keys/key-entry.js";
import type { AccessTokens, ActClaim } from "./access-tokens.js";
import { actDepth } from "./access-tokens.js";
import { checkTargetAgent, exchangedExpiry, exchangedScopes, exchangedTokenResponse } from "./exchange-rules.js";
import { type ExternalExchange, JWT_TOKEN_TYPE } from "./external-exchange.js";
import { OAuthError } from "./oauth-errors.js";
import { ACCESS_TOKEN_TYPE, type RequestMeta, type TokenResponse } from "./tokens-service.js";
import type { WorkloadExchange } from "./workload-exchange.js";

export interface ExchangeRequest {
  subjectToken: string;
  subjectTokenType: string;
  actorToken?: string | undefined;
  actorTokenType?: string | undefined;
  /** An agent name; required unless the subject is a trusted issuer's JWT. */
  audience?: string | undefined;
  scopes?: string[] | undefined;
}

export interface ExchangeDeps {
  now: () => number;
  audit: AuditSink;
  access: AccessTokens;
  /** Who is calling and whether a key or token may be used here (auth/caller-auth.ts). */
  auth: CallerAuth;
  agentExists: (name: string) => Promise<boolean>;
  /** The calling agent's `may_call` grant (SPEC §3 grants). */
  mayCall: (from: string, to: string) => Promise<boolean>;
  maxLifetimeS: number;
  maxActDepth: number;
  /** Keyward's issuer URL: a user's own token (not one forwarded to an agent) has it as `aud`. */
  issuer: () => string;
  /** The exchange of a trusted identity provider's JWT (`subject_token_type` jwt, SPEC §8). */
  external?: ExternalExchange;
  /** The exchange of a platform token for its agent's token (`trusted_workloads`), routed by `iss`. */
  workload?: { names: (token: string) => boolean; exchange: WorkloadExchange };
  onIssue?: () => void;
}

const WHOSE = "the subject token's scopes";

interface Actor {
  agent: string;
  keyId: string;
  /** The actor token's expiry (ms), when the actor presented a token rather than its key. */
  expMs: number | undefined;
}

/**
 * RFC 8693 token exchange (SPEC §5): agent W, holding a token for caller C, gets a token for
 * agent D — only if W may call D, D is in C's scopes and the scope asked for is C's or less. The
 * result carries C as `sub`, W in `act` (nested for longer chains), and never outlives the
 * subject token. A user's token may be exchanged for an agent audience with no actor (SPEC §8).
 */
export function createTokenExchange(deps: ExchangeDeps) {
  /**
   * The actor: the calling agent, by its key (the client's, or a `kwk_` actor token) or by its own
   * access token for Keyward. Either is judged like any caller's credential, allowlist included:
   * a token handed to the agent by someone else (aud = that agent) is not the agent's to act with.
   */
  async function actorOf(req: ExchangeRequest, client: KeyEntry | undefined, ip: string): Promise<Actor | undefined> {
    if (req.actorToken === undefined) {
      if (req.actorTokenType !== undefined)
        throw new OAuthError("invalid_request", "actor_token_type without actor_token");
      return client ? agentActor(client, undefined) : undefined;
    }
    if (req.actorTokenType !== ACCESS_TOKEN_TYPE) {
      throw new OAuthError("invalid_request", `actor_token_type: must be ${ACCESS_TOKEN_TYPE}`);
    }
    const asKey = req.actorToken.startsWith("kwk_");
    const judged = asKey ? await deps.auth.key(req.actorToken, ip) : await deps.auth.token(req.actorToken, KEYWARD, ip);
    if (!judged.ok) throw new OAuthError("invalid_grant", `actor_token: ${judged.message}`);
    const actor = judged.caller;
    if (asKey) {
      if (client && client.id !== actor.keyId)
        throw new OAuthError("invalid_grant", "actor_token does not match the client");
      return agentActor(actor.key, undefined);
    }
    if (!actor.principal.startsWith("agent:"))
      throw new OAuthError("invalid_grant", "actor_token must belong to an agent");
    return { agent: actor.principal.slice("agent:".length), keyId: actor.keyId, expMs: actor.token?.expMs };
  }

  function agentActor(key: KeyEntry, expMs: number | undefined): Actor {
    if (!key.owner.startsWith("agent:")) throw new OAuthError("invalid_grant", "the actor must be an agent's key");
    return { agent: key.owner.slice("agent:".length), keyId: key.id, expMs };
  }

  /**
   * The subject: with an actor, a token held by that actor (its `aud` names the actor's agent,
   * as the JWT the gateway forwarded does); without one, a user's own token for Keyward, presented
   * by the user. Its scopes are the effective ones: narrowed to its key's current scopes.
   */
  async function subjectOf(req: ExchangeRequest, actor: Actor | undefined, ip: string): Promise<Caller> {
    if (req.subjectTokenType !== ACCESS_TOKEN_TYPE) {
      throw new OAuthError("invalid_request", `subject_token_type: must be ${ACCESS_TOKEN_TYPE} or ${JWT_TOKEN_TYPE}`);
    }
    const checked = deps.access.check(req.subjectToken);
    if (!checked.ok) throw new OAuthError("invalid_grant", "subject_token is not a valid access token");
    if (actor === undefined && !checked.token.audiences.includes(deps.issuer())) {
      // Without an actor only the user's own token (aud = the issuer) may be exchanged. A token
      // forwarded to an agent is that agent's to pass on, as its actor, under its `may_call`.
      throw new OAuthError("invalid_request", "actor_token: required (the subject token was issued to an agent)");
    }
    const place: Place = actor ? { kind: "held_by", agent: actor.agent } : KEYWARD;
    const judged = await deps.auth.checked(checked.token, place, ip);
    if (!judged.ok) throw new OAuthError("invalid_grant", `subject_token: ${judged.message}`);
    return judged.caller;
  }

  return async function exchange(
    req: ExchangeRequest,
    client: KeyEntry | undefined,
    meta: RequestMeta,
  ): Promise<TokenResponse> {
    if (req.subjectTokenType === JWT_TOKEN_TYPE && deps.workload?.names(req.subjectToken)) {
      // An agent proves itself by its platform token alone: an actor would be a second identity.
      if (req.actorToken !== undefined || req.actorTokenType !== undefined) {
        throw new OAuthError("invalid_request", "actor_token: not used with a workload's subject_token");
      }
      if (req.audience !== undefined) {
        throw new OAuthError(
          "invalid_target",
          "audience: a workload's token is for Keyward; exchange it as actor for another agent",
        );
      }
      return deps.workload.exchange({ token: req.subjectToken, scopes: req.scopes, grant: "token-exchange" }, meta);
    }
    if (req.subjectTokenType === JWT_TOKEN_TYPE && deps.external) return deps.external(req, meta);
    const target = req.audience;
    if (target === undefined) throw new OAuthError("invalid_request", "audience: required");
    const actor = await actorOf(req, client, meta.ip);
    const subject = await subjectOf(req, actor, meta.ip);
    const subjectToken = subject.token;
    if (subjectToken === undefined) throw new OAuthError("invalid_grant", "subject_token is not an access token");
    const { claims } = subjectToken;

    let act: ActClaim | undefined;
    if (actor) {
      if (!(await deps.mayCall(actor.agent, target))) {
        throw new OAuthError("invalid_target", `agent ${actor.agent} may not call ${target}`);
      }
      const previous = claims.act as ActClaim | undefined;
      if (actDepth(previous) + 1 > deps.maxActDepth) {
        throw new OAuthError("invalid_request", `the delegation chain would be longer than ${deps.maxActDepth}`);
      }
      act = { sub: `agent:${actor.agent}`, client_id: actor.keyId, ...(previous ? { act: previous } : {}) };
    } else if (!claims.sub.startsWith("user:")) {
      throw new OAuthError("invalid_request", "actor_token: required (the calling agent's key)");
    }
    await checkTargetAgent(subject.scopeSet, target, deps.agentExists, WHOSE);
    const scopes = exchangedScopes(subject.scopeSet, req.scopes, WHOSE);
    const { exp, expiresIn } = exchangedExpiry(deps.now(), deps.maxLifetimeS, [subjectToken.expMs, actor?.expMs]);

    const { token, claims: minted } = deps.access.mint({
      sub: claims.sub,
      aud: target,
      scopes,
      clientId: claims.client_id,
      exp,
      act,
    });
    await deps.audit.recordToken({
      actor: actor ? `agent:${actor.agent}` : claims.sub,
      action: "token.exchange",
      target: `agent:${target}`,
      outcome: "success",
      ip: meta.ip,
      requestId: meta.requestId,
      details: { sub: claims.sub, jti: minted.jti, subject_jti: claims.jti, depth: actDepth(act), exp },
    });
    deps.onIssue?.();
    return exchangedTokenResponse(token, expiresIn, minted.scope);
  };
}

export type TokenExchange = ReturnType<typeof createTokenExchange>;
