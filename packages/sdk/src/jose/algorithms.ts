import { constants, type KeyObject, verify } from "node:crypto";
import type { ParsedJws } from "./compact.js";
import { fail, type JoseResult } from "./failure.js";

/**
 * The asymmetric JWS algorithms the core can verify (RFC 7518 §3, RFC 8037). No `none` and no
 * HMAC, ever: a caller pins a subset, and nothing outside it reaches node:crypto.
 */
export type JwsAlgorithm =
  | "ES256"
  | "ES384"
  | "ES512"
  | "EdDSA"
  | "RS256"
  | "RS384"
  | "RS512"
  | "PS256"
  | "PS384"
  | "PS512";

export const JWS_ALGORITHMS: ReadonlySet<JwsAlgorithm> = new Set<JwsAlgorithm>([
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
]);

/** A public key and the algorithms it may verify (a JWK's `alg` narrows it to one, RFC 7517 §4.4). */
export interface VerificationKey {
  key: KeyObject;
  algorithms: ReadonlySet<JwsAlgorithm>;
}

const HASH: Record<JwsAlgorithm, string | null> = {
  ES256: "sha256",
  ES384: "sha384",
  ES512: "sha512",
  EdDSA: null,
  RS256: "sha256",
  RS384: "sha384",
  RS512: "sha512",
  PS256: "sha256",
  PS384: "sha384",
  PS512: "sha512",
};

/**
 * Fixed signature sizes: ECDSA is r ‖ s (RFC 7518 §3.4), never DER; Ed25519's is 64 bytes. RSA's
 * follows the modulus, which node:crypto checks.
 */
export const SIGNATURE_BYTES: Partial<Record<JwsAlgorithm, number>> = { ES256: 64, ES384: 96, ES512: 132, EdDSA: 64 };

/**
 * Checks the signature of a parsed JWS with `key`. The header's `alg` was pinned by the parser;
 * here it must also be one the key may verify, or nothing is checked (`key_mismatch`).
 * Tokens Keyward did not sign are verified as their issuers sign them: high-S ES256 included.
 *
 * @example
 * ```ts
 * import { parseCompact, verifySignature } from "@keyward/sdk/jose";
 *
 * const parsed = parseCompact(token, { algorithms: new Set(["RS256"]) });
 * if (parsed.ok) {
 *   const key = { key: rsaPublicKey, algorithms: new Set(["RS256"] as const) };
 *   const signed = verifySignature(parsed.value, key); // { ok: true } or "key_mismatch" / "bad_signature"
 * }
 * ```
 */
export function verifySignature(
  jws: Pick<ParsedJws, "alg" | "signingInput" | "signature">,
  key: VerificationKey,
): JoseResult<undefined> {
  if (!key.algorithms.has(jws.alg)) return fail("key_mismatch");
  // The input passed the base64url alphabet check, so latin1 is its exact byte encoding (and cheap).
  const data = Buffer.from(jws.signingInput, "latin1");
  let valid: boolean;
  try {
    valid = verify(HASH[jws.alg], data, keyInput(jws.alg, key.key), jws.signature);
  } catch {
    // A key of the wrong type for the algorithm (an RSA key under ES256): no signature holds.
    valid = false;
  }
  return valid ? { ok: true, value: undefined } : fail("bad_signature");
}

function keyInput(alg: JwsAlgorithm, key: KeyObject) {
  if (alg.startsWith("PS")) {
    return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
  }
  if (alg.startsWith("ES")) return { key, dsaEncoding: "ieee-p1363" as const };
  return key;
}
