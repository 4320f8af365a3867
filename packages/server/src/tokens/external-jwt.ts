import {
  decodePayload,
  type JoseFailure,
  type JoseResult,
  JWS_ALGORITHMS,
  type ParsedJws,
  parseCompact,
  verifySignature,
} from "@keyward/sdk/jose";
import type { ExternalAlgorithm, ExternalKey } from "./external-jwks.js";

/** A compact JWS split, its header checked and its payload decoded; the signature is not checked yet. */
export interface ParsedExternalJwt extends ParsedJws {
  /** Read before the signature is checked: only to pick the issuer entry, never trusted. */
  unverifiedPayload: Record<string, unknown>;
}

/**
 * The header policy for other issuers' tokens, on the SDK's JOSE core. Every asymmetric algorithm
 * passes the parse (never `none`, never HMAC); each issuer entry then pins its own. ID tokens
 * carry more claims than Keyward's own tokens: bounded higher, still as attacker input.
 *
 * `typ` values of the tokens we exchange: ID tokens (`JWT`, or none) and RFC 9068 access tokens
 * (`at+jwt`). Any other typed JWT (`dpop+jwt`, `logout+jwt`, `secevent+jwt`) is a signed statement
 * for another purpose that may carry the same `iss`, `aud` and `sub`, and must not log anyone in
 * (RFC 8725 §3.11).
 */
const EXTERNAL_POLICY = {
  algorithms: JWS_ALGORITHMS,
  typ: { accept: ["JWT", "at+jwt"], optional: true },
  maxTokenChars: 32 * 1024,
};

/** Splits and decodes a compact JWS; anything malformed or refused is a typed failure. */
export function parseExternalJwt(token: string): JoseResult<ParsedExternalJwt> {
  const parsed = parseCompact(token, EXTERNAL_POLICY);
  if (!parsed.ok) return parsed;
  const payload = decodePayload(parsed.value);
  if (!payload.ok) return payload;
  return { ok: true, value: { ...parsed.value, unverifiedPayload: payload.value } };
}

/**
 * Checks the signature with `key`, for an algorithm the caller pinned: the header's `alg` must be
 * one the issuer is configured with and one the key itself may verify, or nothing is checked.
 */
export function verifyExternalSignature(
  jwt: ParsedExternalJwt,
  key: ExternalKey,
  pinned: ReadonlySet<ExternalAlgorithm>,
): JoseResult<undefined> {
  if (!pinned.has(jwt.alg)) return { ok: false, code: "unsupported_alg" };
  return verifySignature(jwt, key);
}

/** The `error_description` for a refusal: fixed phrases, never any part of the token. */
export function externalRefusal(failure: JoseFailure): string {
  switch (failure.code) {
    case "malformed":
      return "the subject_token is not a well-formed JWT";
    case "too_large":
      return "the subject_token is too long";
    case "unsupported_alg":
      return "the subject_token must be signed with an asymmetric algorithm its issuer is configured with";
    case "forbidden_header":
      return `the subject_token carries a forbidden "${failure.header}" header`;
    case "wrong_type":
      return "the subject_token's typ is not that of an ID or access token";
    case "missing_kid":
      return "the subject_token header has no kid";
    case "unknown_kid":
    case "key_mismatch":
    case "bad_signature":
      return "the subject_token's signature does not verify with the issuer's keys";
    case "invalid_claim":
      return `the subject_token has no valid ${failure.claim} claim`;
    case "wrong_issuer":
      return "the subject_token's issuer is not trusted";
    case "wrong_audience":
      return "the subject_token is meant for another audience";
    case "expired":
      return "the subject_token has expired";
    case "not_yet_valid":
      return failure.claim === "iat"
        ? "the subject_token was issued in the future"
        : "the subject_token is not valid yet";
  }
}
