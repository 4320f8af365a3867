import { KeywardError } from "../errors.js";
import type { JoseFailure } from "../jose/failure.js";

/**
 * Why a bearer token was refused. `invalid_token` and `token_expired` come from `verify`;
 * `missing_credentials` only from reading a request that carries no bearer token at all.
 */
export type TokenErrorCode = "invalid_token" | "token_expired" | "missing_credentials";

/**
 * A token was refused (a {@link KeywardError}, like every SDK error). The message says why in general terms and never contains the token or
 * any part of it (tokens end up in logs through error messages more often than any other way).
 *
 * @example
 * ```ts
 * try {
 *   const token = await v.verify(raw);
 * } catch (err) {
 *   if (err instanceof TokenVerificationError) console.warn(err.code, err.message);
 *   else throw err;
 * }
 * ```
 */
export class TokenVerificationError extends KeywardError {
  declare readonly code: TokenErrorCode;
  constructor(code: TokenErrorCode, message: string) {
    super(code, message);
    this.name = "TokenVerificationError";
  }
}

/**
 * The issuer's key set could not be loaded, so no token can be judged yet. This is an outage, not
 * a verdict on the token: the middleware answers 503 `jwks_unavailable`, never 401.
 *
 * @example
 * ```ts
 * try {
 *   await v.verify(raw);
 * } catch (err) {
 *   if (err instanceof JwksUnavailableError) return retryLater();
 *   throw err;
 * }
 * ```
 */
export class JwksUnavailableError extends KeywardError {
  declare readonly code: "jwks_unavailable";
  constructor(message: string, options?: { cause?: unknown }) {
    super("jwks_unavailable", message, options);
    this.name = "JwksUnavailableError";
  }
}

export const invalid = (message: string): TokenVerificationError =>
  new TokenVerificationError("invalid_token", message);

/** What the verifier says for each refusal of the JOSE core: fixed phrases, never the token. */
const REFUSALS: Record<JoseFailure["code"], string> = {
  malformed: "the access token is not a well-formed compact JWS",
  too_large: "the access token is too long",
  unsupported_alg: "the access token is signed with an algorithm this verifier does not accept",
  forbidden_header: "the access token carries a forbidden header",
  wrong_type: 'the token is not an access token (typ must be "at+jwt")',
  missing_kid: "the access token header has no kid",
  unknown_kid: "the access token is signed by a key the issuer does not publish",
  key_mismatch: "the access token's algorithm does not match its key",
  bad_signature: "the access token signature is not valid",
  invalid_claim: "the access token has an invalid claim",
  wrong_issuer: "the access token was issued by another issuer",
  wrong_audience: "the access token is meant for another audience",
  expired: "the access token has expired",
  not_yet_valid: "the access token is not valid yet",
};

/** A refusal of the JOSE core as the verifier's error: `token_expired` for `expired`, else `invalid_token`. */
export function refusal(failure: JoseFailure): TokenVerificationError {
  let message = REFUSALS[failure.code];
  if (failure.header !== undefined) message = `the access token carries a forbidden "${failure.header}" header`;
  else if (failure.code === "invalid_claim" && failure.claim !== undefined) {
    message = `the access token has no valid ${failure.claim} claim`;
  } else if (failure.code === "not_yet_valid" && failure.claim === "iat") {
    message = "the access token was issued in the future";
  }
  return new TokenVerificationError(failure.code === "expired" ? "token_expired" : "invalid_token", message);
}
