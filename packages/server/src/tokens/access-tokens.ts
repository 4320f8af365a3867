import { randomUUID } from "node:crypto";
import { createBoundedCache } from "@keyward/sdk/cache";
import { type JoseFailure, validateClaims } from "@keyward/sdk/jose";
import type { AccessClaims, ActLink as ActClaim, CheckedToken, TokenCheckResult } from "../auth/checked-token.js";
import { isKeylessClientId } from "../auth/issuer-client.js";
import type { SigningKeys } from "../crypto/signing-keys.js";

export type { ActLink as ActClaim } from "../auth/checked-token.js";

export interface MintInput {
  sub: string;
  aud: string;
  scopes: readonly string[];
  clientId: string;
  /** Absolute expiry, epoch seconds. */
  exp: number;
  act?: ActClaim | undefined;
}

const MAX_CACHED = 100_000;

/**
 * Keyward's access tokens (RFC 9068 JWTs, `typ: at+jwt`, ES256): minting, and checking with a
 * cache so a token is verified once and then costs a map lookup, like an API key.
 * Keyward's own tokens get no clock leeway (SPEC §4).
 */
export function createAccessTokens(deps: {
  signer: Pick<SigningKeys, "sign" | "verify">;
  issuer: () => string;
  now: () => number;
  isRevoked: (jti: string) => boolean;
  /** A token signed by a key we do not hold: another replica may have rotated. */
  onUnknownKid?: () => void;
}) {
  // The least recently presented token leaves first when full. No TTL on the cache: `check` reads
  // the clock once anyway for `exp` and drops an expired hit, so a second clock read is saved.
  const cache = createBoundedCache<string, CheckedToken>({ max: MAX_CACHED });

  function verifyUncached(token: string): TokenCheckResult {
    const verified = deps.signer.verify(token, { typ: "at+jwt" });
    if (!verified.ok) {
      if (verified.code === "unknown_kid") deps.onUnknownKid?.();
      return invalid("the access token is not valid");
    }
    const claims = verified.value.payload;
    // No clock leeway for our own tokens (SPEC §4); `iat` is not held against a replica's clock.
    const registered = validateClaims(
      claims,
      { issuer: deps.issuer(), required: ["exp", "iat", "aud"], rejectFutureIat: false },
      deps.now() / 1000,
    );
    if (!registered.ok) return claimRefusal(registered);
    const { sub, exp, jti, client_id, scope } = claims;
    if (typeof sub !== "string" || typeof jti !== "string" || typeof client_id !== "string") {
      return invalid("the access token lacks required claims");
    }
    if (typeof scope !== "string") return invalid("the access token lacks required claims");
    const audiences = registered.value.audience;
    const keyIds = isKeylessClientId(client_id) ? [] : [client_id];
    for (let act = claims.act as ActClaim | undefined; act !== undefined; act = act.act) {
      // Signed by us does not make every field well-typed (an older or hand-built token may differ):
      // each link's fields are checked before use, so a wrong type is invalid_token, never a throw.
      if (typeof act !== "object" || act === null || typeof act.sub !== "string") {
        return invalid("the access token has a malformed act claim");
      }
      if (act.client_id !== undefined && typeof act.client_id !== "string") {
        return invalid("the access token has a malformed act claim");
      }
      if (act.client_id !== undefined && !isKeylessClientId(act.client_id)) keyIds.push(act.client_id);
    }
    return {
      ok: true,
      token: {
        claims: claims as AccessClaims,
        scopes: scope.split(" ").filter(Boolean),
        scopeSet: new Set(scope.split(" ").filter(Boolean)),
        audiences,
        keyIds,
        expMs: (exp as number) * 1000,
      },
    };
  }

  function check(token: string): TokenCheckResult {
    let checked = cache.get(token);
    if (checked === undefined) {
      const result = verifyUncached(token);
      if (!result.ok) return result;
      checked = result.token;
      if (checked.expMs > deps.now()) cache.set(token, checked);
    }
    if (checked.expMs <= deps.now()) {
      cache.delete(token);
      return { ok: false, code: "token_expired", message: "the access token has expired" };
    }
    if (deps.isRevoked(checked.claims.jti)) return invalid("the access token has been revoked");
    return { ok: true, token: checked };
  }

  return {
    mint(input: MintInput): { token: string; claims: AccessClaims } {
      const claims: AccessClaims = {
        iss: deps.issuer(),
        sub: input.sub,
        aud: input.aud,
        exp: input.exp,
        iat: Math.floor(deps.now() / 1000),
        jti: randomUUID(),
        client_id: input.clientId,
        scope: input.scopes.join(" "),
        ...(input.act ? { act: input.act } : {}),
      };
      return { token: deps.signer.sign(claims, "at+jwt"), claims };
    },

    check,

    /** Drops every cached verification (e.g. after a signing key was removed). */
    clear(): void {
      cache.clear();
    },
  };
}

function invalid(message: string): TokenCheckResult {
  return { ok: false, code: "invalid_token", message };
}

/** The JOSE core's verdict on the registered claims, in this module's words. */
function claimRefusal(failure: JoseFailure): TokenCheckResult {
  switch (failure.code) {
    case "expired":
      return { ok: false, code: "token_expired", message: "the access token has expired" };
    case "wrong_issuer":
      return invalid("the access token was not issued by this Keyward");
    case "not_yet_valid":
      return invalid("the access token is not valid yet");
    default:
      return invalid(
        failure.claim === "aud" ? "the access token has no valid audience" : "the access token lacks required claims",
      );
  }
}

export type AccessTokens = ReturnType<typeof createAccessTokens>;

/** The `act` chain's depth: 0 for a token nobody acted on. */
export function actDepth(act: ActClaim | undefined): number {
  let depth = 0;
  for (let a = act; a !== undefined; a = a.act) depth++;
  return depth;
}
