import { KeywardError } from "../errors.js";

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
