/**
 * Why a JWS or JWT was refused: one closed union that callers switch on (as with jose's
 * `code`/`claim`). A failure is a result, never a thrown string, and it holds no part of the token,
 * so a caller may log it whole.
 */
export type JoseFailureCode =
  /** Not a compact JWS: wrong shape, not canonical base64url, a segment that is not a JSON object, a signature of the wrong length. */
  | "malformed"
  /** Longer than the caller's bound (default {@link MAX_TOKEN_CHARS}). */
  | "too_large"
  /** `alg` is not one of the algorithms the caller pinned (`none`, HMAC and typos included). */
  | "unsupported_alg"
  /** A header that would name the key (`jku`, `x5u`, `jwk`, `x5c`) or change processing (`crit`, `b64`); see `header`. */
  | "forbidden_header"
  /** `typ` is missing or not one the caller accepts. */
  | "wrong_type"
  /** No `kid`, or one that is not a non-empty string. */
  | "missing_kid"
  /** The caller has no key under this `kid`. */
  | "unknown_kid"
  /** The key found by `kid` may not verify this `alg`. */
  | "key_mismatch"
  | "bad_signature"
  /** A claim is missing or of the wrong type; see `claim`. */
  | "invalid_claim"
  | "wrong_issuer"
  | "wrong_audience"
  | "expired"
  /** `nbf` is later than now, or `iat` is (see `claim`), beyond the clock tolerance. */
  | "not_yet_valid";

export interface JoseFailure {
  ok: false;
  code: JoseFailureCode;
  /** The claim concerned, for `invalid_claim`, `not_yet_valid`, `expired`, `wrong_issuer`, `wrong_audience`. */
  claim?: string;
  /** The header concerned, for `forbidden_header`. */
  header?: string;
}

export type JoseResult<T> = { ok: true; value: T } | JoseFailure;

/** Bounds the work spent on garbage; far larger than any token Keyward issues (hundreds of scopes fit). */
export const MAX_TOKEN_CHARS = 16 * 1024;

export function fail(code: JoseFailureCode, detail?: { claim?: string; header?: string }): JoseFailure {
  return detail === undefined ? { ok: false, code } : { ok: false, code, ...detail };
}
