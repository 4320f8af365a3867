import type { KeyObject } from "node:crypto";
import {
  canonicalToken,
  encodeEs256Header,
  type JoseResult,
  type JwsAlgorithm,
  signCompact,
  type VerificationKey,
  type VerifiedJwt,
  verifyJwt,
} from "@keyward/sdk/jose";

/**
 * Keyward's own compact JWS: ES256 only, on the SDK's JOSE core (@keyward/sdk/jose), which the
 * SDK's verifier and the trusted-issuer verifier share. Signing sits on the gateway's request
 * path: the header is encoded once per key and typ, and a signature is one native call, low-S
 * (the malleability rule is written down in the core's low-s.ts). Verification follows RFC 8725:
 * the algorithm is pinned, `kid` is only a map key, and headers that point at other keys are
 * refused rather than followed. Failures are the core's typed codes.
 */
export type { VerifiedJwt };
export type VerifyResult = JoseResult<VerifiedJwt>;

export const JWS_ALG = "ES256";
const ES256_ONLY: ReadonlySet<JwsAlgorithm> = new Set([JWS_ALG]);

/** The encoded protected header `{alg, typ, kid}`; computed once per key and typ by the caller. */
export const encodeHeader = encodeEs256Header;
export { canonicalToken, signCompact };

/** Checks the signature of a compact ES256 JWS against `keys`; no claims. Bad tokens are results, never throws. */
export function verifyCompact(token: unknown, keys: ReadonlyMap<string, KeyObject>, typ?: string): VerifyResult {
  return verifyJwt(token, {
    algorithms: ES256_ONLY,
    ...(typ === undefined ? {} : { typ: { accept: [typ] } }),
    key: (kid) => {
      const key = keys.get(kid);
      return key === undefined ? undefined : ({ key, algorithms: ES256_ONLY } satisfies VerificationKey);
    },
  });
}
