import { KeywardError } from "../errors.js";
import type { KeyEntry } from "../keys/key-entry.js";
import { type AccessTokenCheck, createCallerAuth } from "../tokens/caller-auth.js";
import { userOfPrincipal } from "./user-rules.js";

export type UserTokenCheck = { ok: true; user: string; jti: string; keyId: string } | { ok: false; message: string };

/**
 * Checks the `user_token` an agent presents at `/v1/tools/credentials` (SPEC §6): one of Keyward's
 * access tokens, not expired or revoked, resting on keys that are all still live, with `sub` =
 * `user:<id>` and this agent among its audiences (the JWT the gateway forwards to the agent is
 * such a token). Denials are data.
 *
 * The checks are CallerAuth's own, so a token that cannot call Keyward cannot fetch credentials
 * either, with one difference: the user key's `ip_allow` is not applied. The agent presents the
 * token from the agent's address, not the user's; the allowlist was enforced where the user used
 * the key (minting the token, or at the gateway). A `kwk_` key is not a token and is refused.
 */
export function createUserTokenCheck(deps: {
  checkToken: AccessTokenCheck;
  keyById: (id: string) => Promise<KeyEntry | null>;
  now: () => number;
}) {
  const authenticate = createCallerAuth({
    lookupKey: async () => "malformed",
    checkToken: deps.checkToken,
    keyById: async (id) => {
      const key = await deps.keyById(id);
      return key?.ipAllow ? { ...key, ipAllow: null } : key;
    },
    now: deps.now,
  });

  return async function checkUserToken(token: string, agent: string): Promise<UserTokenCheck> {
    if (!/^[\x21-\x7e]+$/.test(token)) return { ok: false, message: "user_token is not an access token" };
    let caller: Awaited<ReturnType<typeof authenticate>>;
    try {
      caller = await authenticate({ authorization: `Bearer ${token}` });
    } catch (err) {
      // A store outage is not the token's fault: let it surface as the 503 it is.
      if (!(err instanceof KeywardError)) throw err;
      return { ok: false, message: `user_token: ${err.message}` };
    }
    if (caller.via !== "token" || !caller.claims) return { ok: false, message: "user_token is not an access token" };
    const user = userOfPrincipal(caller.principal);
    if (user === undefined) return { ok: false, message: "user_token is not a user's token" };
    const aud = caller.claims.aud;
    if (!(Array.isArray(aud) ? aud : [aud]).includes(agent)) {
      return { ok: false, message: `user_token is not meant for agent ${agent}` };
    }
    return { ok: true, user, jti: caller.claims.jti, keyId: caller.keyId };
  };
}

export type CheckUserToken = ReturnType<typeof createUserTokenCheck>;
