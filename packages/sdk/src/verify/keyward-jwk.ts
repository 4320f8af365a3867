import { createPublicKey, type KeyObject } from "node:crypto";
import type { VerificationKey } from "../jose/algorithms.js";
import type { VerifyAlgorithm } from "./compact.js";

/** A verification key from Keyward's JWKS, bound to the one algorithm it may verify. */
export interface JwksKey extends VerificationKey {
  key: KeyObject;
  algorithms: ReadonlySet<VerifyAlgorithm>;
}

/**
 * Keyward's kids are RFC 7638 thumbprints (43 base64url characters), so the verifier holds them to
 * a stricter rule than the cache's default for other issuers: no `:`, at most 128 characters.
 */
export const KEYWARD_KID = /^[A-Za-z0-9._~+=-]{1,128}$/;

/**
 * One JWK of Keyward's key set as a public KeyObject, or `undefined` for a key this verifier must
 * not use: an algorithm not accepted, a type that does not match its `alg`. Only the public members are read, so a private member published by mistake is ignored.
 */
export function keywardJwkImporter(algorithms: ReadonlySet<VerifyAlgorithm>) {
  return (jwk: Readonly<Record<string, unknown>>): JwksKey | undefined => {
    const { alg, kty, crv, x, y } = jwk;
    let keyAlg: VerifyAlgorithm;
    let material: { kty: string; crv: string; x: string; y?: string };
    if (kty === "EC" && crv === "P-256" && typeof x === "string" && typeof y === "string") {
      keyAlg = "ES256";
      material = { kty, crv, x, y };
    } else if (kty === "OKP" && crv === "Ed25519" && typeof x === "string") {
      keyAlg = "EdDSA";
      material = { kty, crv, x };
    } else {
      return undefined;
    }
    if ((alg !== undefined && alg !== keyAlg) || !algorithms.has(keyAlg)) return undefined;
    // Throws for a point not on the curve: the cache skips that key.
    return { algorithms: new Set([keyAlg]), key: createPublicKey({ key: material, format: "jwk" }) };
  };
}
