import { validateClaims } from "../jose/claims.js";
import { invalid, refusal } from "./errors.js";

/**
 * A verified Keyward access token. The object, its arrays and `claims` are frozen: a result may be
 * served again from the verifier's cache, so no request can change what another one sees.
 */
export interface VerifiedToken {
  /** `sub`: the principal the token speaks for, e.g. `consumer:billing` or `user:42`. */
  readonly subject: string;
  /** `aud`, always as a list. */
  readonly audience: readonly string[];
  /** `scope`, split on spaces; empty when the token has none. */
  readonly scopes: readonly string[];
  /** `client_id`: the id of the key the token was obtained with. */
  readonly clientId: string;
  /**
   * The delegation chain from nested `act` claims (RFC 8693 §4.1), outermost first: the agent
   * that presented this token, then the one that delegated to it, and so on. Empty when direct.
   */
  readonly actor: readonly string[];
  /** `exp`, in seconds since the epoch. */
  readonly expiresAt: number;
  /** Every claim as signed by the issuer. */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface ClaimRules {
  issuer: string;
  audiences: ReadonlySet<string>;
  toleranceS: number;
}

/** Far beyond Keyward's own depth cap; bounds the walk over a chain we did not produce. */
const MAX_ACT_DEPTH = 32;
const MAX_FREEZE_DEPTH = 64;

/** Checks RFC 9068's required claims and their times; `nowS` in seconds. */
export function checkClaims(claims: Record<string, unknown>, rules: ClaimRules, nowS: number): VerifiedToken {
  // The registered claims (types, iss, aud, exp/nbf/iat with the tolerance) are the JOSE core's.
  const registered = validateClaims(
    claims,
    { issuer: rules.issuer, audience: rules.audiences, required: ["exp", "iat"], clockToleranceS: rules.toleranceS },
    nowS,
  );
  if (!registered.ok) throw refusal(registered);
  const { sub, exp, jti, client_id: clientId, scope } = claims;
  if (typeof sub !== "string" || sub.length === 0) throw invalid("the access token has no valid sub claim");
  if (typeof clientId !== "string") throw invalid("the access token has no valid client_id claim");
  if (typeof jti !== "string") throw invalid("the access token has no valid jti claim");
  if (scope !== undefined && typeof scope !== "string") throw invalid("the access token has an invalid scope claim");

  return deepFreeze({
    subject: sub,
    audience: [...registered.value.audience],
    scopes: scope ? scope.split(" ").filter((s) => s.length > 0) : [],
    clientId,
    actor: actorChain(claims.act),
    expiresAt: exp as number,
    claims,
  });
}

function actorChain(act: unknown): string[] {
  const chain: string[] = [];
  let node = act;
  while (node !== undefined) {
    if (typeof node !== "object" || node === null || Array.isArray(node)) throw invalid("the act claim is malformed");
    const { sub, act: inner } = node as { sub?: unknown; act?: unknown };
    if (typeof sub !== "string" || sub.length === 0) throw invalid("the act claim is malformed");
    if (chain.length === MAX_ACT_DEPTH) throw invalid("the act claim is nested too deeply");
    chain.push(sub);
    node = inner;
  }
  return chain;
}

function deepFreeze<T>(value: T, depth = 0): T {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return value;
  if (depth < MAX_FREEZE_DEPTH) {
    for (const child of Object.values(value)) deepFreeze(child, depth + 1);
  }
  return Object.freeze(value);
}
