import { constants, type KeyObject, verify } from "node:crypto";
import { base64url } from "../crypto/base64url.js";
import { decodeJsonSegment, FORBIDDEN_HEADERS } from "../crypto/jws.js";
import type { ExternalAlgorithm, ExternalKey } from "./external-jwks.js";

/** A compact JWS split, its header checked and its payload decoded; the signature is not checked yet. */
export interface ParsedExternalJwt {
  alg: string;
  kid: string;
  /** Read before the signature is checked: only to pick the issuer entry, never trusted. */
  unverifiedPayload: Record<string, unknown>;
  signingInput: Buffer;
  signature: Buffer;
}

/** ID tokens carry more claims than Keyward's own tokens; still bounded, as attacker input. */
const MAX_TOKEN_CHARS = 32 * 1024;

const HASH: Record<ExternalAlgorithm, string | null> = {
  RS256: "sha256",
  RS384: "sha384",
  RS512: "sha512",
  PS256: "sha256",
  PS384: "sha384",
  PS512: "sha512",
  ES256: "sha256",
  ES384: "sha384",
  ES512: "sha512",
  EdDSA: null,
};
/** JWS ECDSA signatures are r ‖ s of fixed size (RFC 7518 §3.4), never DER. */
const EC_SIGNATURE_BYTES: Partial<Record<ExternalAlgorithm, number>> = { ES256: 64, ES384: 96, ES512: 132 };

/**
 * `typ` values of the tokens we exchange: ID tokens (`JWT`, or none) and RFC 9068 access tokens
 * (`at+jwt`). Any other typed JWT (`dpop+jwt`, `logout+jwt`, `secevent+jwt`) is a signed statement
 * for another purpose that may carry the same `iss`, `aud` and `sub`, and must not log anyone in
 * (RFC 8725 §3.11). Compared case-insensitively, `application/` optional (RFC 7515 §4.1.9).
 */
const ACCEPTED_TYP = new Set(["jwt", "at+jwt"]);

function isAcceptedTyp(typ: unknown): boolean {
  return typeof typ === "string" && ACCEPTED_TYP.has(typ.toLowerCase().replace(/^application\//, ""));
}

/** Splits and decodes a compact JWS; for anything malformed or refused, the reason as a string. */
export function parseExternalJwt(token: string): ParsedExternalJwt | string {
  if (token.length > MAX_TOKEN_CHARS) return "the subject_token is too long";
  const parts = token.split(".");
  if (parts.length !== 3) return "the subject_token is not a compact JWS";
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJsonSegment(h);
  const payload = decodeJsonSegment(p);
  const signature = base64url.decode(s);
  if (!header || !payload || !signature) return "the subject_token is not a well-formed JWT";
  for (const name of FORBIDDEN_HEADERS) {
    if (Object.hasOwn(header, name)) return `the subject_token carries a forbidden "${name}" header`;
  }
  const { alg, kid, typ } = header;
  if (typ !== undefined && !isAcceptedTyp(typ)) return "the subject_token's typ is not that of an ID or access token";
  if (typeof alg !== "string" || alg === "none" || /^HS/i.test(alg)) {
    return "the subject_token must be signed with an asymmetric algorithm";
  }
  // `kid` is a map key only: it is never a path, a URL or anything we would fetch.
  if (typeof kid !== "string" || kid.length === 0) return "the subject_token header has no kid";
  return { alg, kid, unverifiedPayload: payload, signingInput: Buffer.from(`${h}.${p}`), signature };
}

/**
 * Checks the signature with `key`, for an algorithm the caller pinned: the header's `alg` must be
 * one the issuer is configured with and one the key itself may verify, or nothing is checked.
 */
export function verifyExternalSignature(
  jwt: ParsedExternalJwt,
  key: ExternalKey,
  pinned: ReadonlySet<ExternalAlgorithm>,
): boolean {
  const alg = jwt.alg as ExternalAlgorithm;
  if (!pinned.has(alg) || !key.algorithms.has(alg)) return false;
  const expectedBytes = EC_SIGNATURE_BYTES[alg];
  if (expectedBytes !== undefined && jwt.signature.length !== expectedBytes) return false;
  try {
    return verify(HASH[alg], jwt.signingInput, keyInput(alg, key.key), jwt.signature);
  } catch {
    return false;
  }
}

function keyInput(alg: ExternalAlgorithm, key: KeyObject) {
  if (alg.startsWith("PS")) {
    return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
  }
  if (alg.startsWith("ES")) return { key, dsaEncoding: "ieee-p1363" as const };
  return key;
}
