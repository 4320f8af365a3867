/**
 * `@keyward/sdk/jose`: the one JOSE core behind every JWT Keyward verifies — its own access tokens
 * (server and SDK verifier) and the ID tokens of trusted identity providers. Compact JWS parsing
 * with a pinned-algorithm header policy, signature checks on node:crypto, registered-claim checks,
 * ES256 signing; every refusal a typed result ({@link JoseFailureCode}), never a thrown string.
 */
export {
  JWS_ALGORITHMS,
  type JwsAlgorithm,
  SIGNATURE_BYTES,
  type VerificationKey,
  verifySignature,
} from "./algorithms.js";
export { base64url, decodeJsonObject } from "./base64url.js";
export { type CheckedClaims, type ClaimRules, type RegisteredClaim, validateClaims } from "./claims.js";
export {
  type CheckedHeader,
  type CompactSegments,
  checkHeader,
  decodePayload,
  decodeSignature,
  FORBIDDEN_HEADERS,
  type HeaderPolicy,
  type ParsedJws,
  parseCompact,
  splitCompact,
} from "./compact.js";
export { type JoseFailure, type JoseFailureCode, type JoseResult, MAX_TOKEN_CHARS } from "./failure.js";
export { canonicalToken, lowS, lowSToken } from "./low-s.js";
export { encodeEs256Header, signCompact } from "./sign.js";
export { type JwtVerifyOptions, type VerifiedJwt, verifyJwt } from "./verify-jwt.js";
