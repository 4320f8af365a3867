import type { CallerAuth } from "../auth/caller-auth.js";
import { userOfPrincipal } from "./user-rules.js";

export type UserTokenCheck = { ok: true; user: string; jti: string; keyId: string } | { ok: false; message: string };

/**
 * Checks the `user_token` an agent presents at `/v1/tools/credentials` (SPEC §6): one of Keyward's
 * access tokens held by that agent (auth/audience.ts `held_by`: its `aud` names the agent, as the
 * JWT the gateway forwards does), resting on keys that are all still usable, with `sub` =
 * `user:<id>`. Denials are data.
 *
 * The user key's `ip_allow` is not applied: the agent presents the token from its own address,
 * and the allowlist was enforced where the user used the key. A `kwk_` key is not a token.
 */
export function createUserTokenCheck(auth: CallerAuth) {
  return async function checkUserToken(token: string, agent: string, ip: string): Promise<UserTokenCheck> {
    if (!/^[\x21-\x7e]+$/.test(token) || token.startsWith("kwk_")) {
      return { ok: false, message: "user_token is not an access token" };
    }
    // A store outage is not the token's fault: it propagates as the 503 it is.
    const result = await auth.token(token, { kind: "held_by", agent }, ip);
    if (!result.ok) return { ok: false, message: `user_token: ${result.message}` };
    const { caller } = result;
    const user = userOfPrincipal(caller.principal);
    if (user === undefined || caller.token === undefined)
      return { ok: false, message: "user_token is not a user's token" };
    return { ok: true, user, jti: caller.token.claims.jti, keyId: caller.keyId };
  };
}

export type CheckUserToken = ReturnType<typeof createUserTokenCheck>;
