import { covers, firstUncovered } from "../auth/scopes.js";
import { OAuthError } from "./oauth-errors.js";
import { ACCESS_TOKEN_TYPE, type TokenResponse } from "./tokens-service.js";

/**
 * The rules both RFC 8693 exchanges (of a Keyward token, of a trusted issuer's JWT) hold the
 * subject to, so the two ways to the same user token cannot drift apart. `whose` names the scopes
 * in refusals, e.g. "the subject token's scopes".
 */
type Held = ReadonlySet<string> | readonly string[];

/** The scopes to mint: those asked for, which must be held, or else all that are held. */
export function exchangedScopes(held: Held, requested: readonly string[] | undefined, whose: string): string[] {
  const scopes = requested ? [...requested] : [...held];
  const missing = firstUncovered(held, scopes);
  if (missing !== undefined) throw new OAuthError("invalid_scope", `${whose} do not include ${missing}`);
  return scopes;
}

/** A token for agent `target` needs `agent:<target>` among the held scopes, and the agent must exist. */
export async function checkTargetAgent(
  held: Held,
  target: string,
  agentExists: (name: string) => Promise<boolean>,
  whose: string,
): Promise<void> {
  if (!covers(held, `agent:${target}`)) {
    throw new OAuthError("invalid_target", `${whose} do not include agent:${target}`);
  }
  if (!(await agentExists(target))) throw new OAuthError("invalid_target", `no agent named ${target}`);
}

/**
 * The exchanged token's `exp` (whole seconds): never after any of `limitsMs` (the subject's expiry,
 * an actor token's) nor after `maxLifetimeS` from now. Nothing is minted that would expire at once.
 */
export function exchangedExpiry(
  nowMs: number,
  maxLifetimeS: number,
  limitsMs: readonly (number | undefined)[],
): { exp: number; expiresIn: number } {
  let expMs = nowMs + maxLifetimeS * 1000;
  for (const limit of limitsMs) if (limit !== undefined) expMs = Math.min(expMs, limit);
  const exp = Math.floor(expMs / 1000);
  const expiresIn = exp - Math.floor(nowMs / 1000);
  if (expiresIn <= 0) throw new OAuthError("invalid_grant", "the subject_token expires too soon");
  return { exp, expiresIn };
}

export function exchangedTokenResponse(token: string, expiresIn: number, scope: string): TokenResponse {
  return {
    access_token: token,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: "Bearer",
    expires_in: expiresIn,
    scope,
  };
}
