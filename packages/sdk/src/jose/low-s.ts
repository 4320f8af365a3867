import { base64url } from "./base64url.js";

/*
 * ECDSA malleability, for ES256. If (r, s) is a valid P-256 signature, so is (r, n − s) over the
 * same bytes: anyone holding a token can make a second string for it with the same header and
 * claims. It grants nothing new, but anything keyed by the token's string would see two tokens.
 * OpenSSL's signer gives s > n/2 about half the time.
 *
 * The rule, for Keyward's own tokens (server and SDK alike):
 * - Keyward signs low-S only (`signCompact`), so every token issued since has one canonical string.
 * - Verification still accepts high-S. Refusing it would void the tokens issued before the
 *   upgrade (up to token_max_lifetime_s), half the tokens of replicas not yet upgraded during a
 *   rolling upgrade, and, in an SDK upgraded before its server, half of that server's tokens.
 * - So a token's identity is never its string: anything keyed by a token uses `jti`, which a flip
 *   cannot change, or the low-S form (`canonicalToken`, `lowSToken`): the SDK verifier's result
 *   cache is keyed that way, the server's verified-token cache re-checks revocation by jti.
 * - Tokens of other issuers are verified as their issuers sign them: other IdPs legitimately emit
 *   high-S, and no string of theirs is used as an identity. EdDSA signatures are not malleable
 *   this way and are never touched.
 */
/** The order n of P-256, and n/2 as the 32 bytes that `s` is compared with. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const P256_HALF_N = Buffer.from((P256_N >> 1n).toString(16).padStart(64, "0"), "hex");
const ES256_SIGNATURE_BYTES = 64;

/**
 * `r ‖ (n − s)` when `s > n/2`; `undefined` when the signature is already low-S or no possible one.
 *
 * @example
 * ```ts
 * import { lowS } from "@keyward/sdk/jose";
 *
 * const canonical = lowS(signature) ?? signature;
 * ```
 */
export function lowS(signature: Buffer): Buffer | undefined {
  if (signature.length !== ES256_SIGNATURE_BYTES) return undefined;
  const s = signature.subarray(32);
  if (Buffer.compare(s, P256_HALF_N) <= 0) return undefined;
  const value = BigInt(`0x${s.toString("hex")}`);
  if (value >= P256_N) return undefined; // not a valid s at all: verification refuses it
  const flipped = (P256_N - value).toString(16).padStart(64, "0");
  return Buffer.concat([signature.subarray(0, 32), Buffer.from(flipped, "hex")]);
}

/**
 * `signingInput` with the low-S form of an ES256 `signature` (r ‖ s, 64 bytes), or `undefined`
 * when the signature is already low-S (or not a possible one: verification refuses it).
 *
 * @example
 * ```ts
 * import { lowSToken } from "@keyward/sdk/jose";
 *
 * const cacheKey = lowSToken(parsed.signingInput, parsed.signature) ?? token;
 * ```
 */
export function lowSToken(signingInput: string, signature: Buffer): string | undefined {
  const low = lowS(signature);
  return low ? `${signingInput}.${low.toString("base64url")}` : undefined;
}

/**
 * The token with its ES256 signature in low-S form: the same string for (r, s) and (r, n − s).
 * Anything that is not a compact JWS with a 64-byte signature comes back unchanged (it will fail
 * verification anyway). Costs a decode only; the BigInt only for high-S.
 *
 * @example
 * ```ts
 * import { canonicalToken } from "@keyward/sdk/jose";
 *
 * seen.add(canonicalToken(token)); // a token and its (r, n − s) twin are one entry
 * ```
 */
export function canonicalToken(token: string): string {
  const dot = token.lastIndexOf(".");
  if (dot < 0) return token;
  const signature = base64url.decode(token.slice(dot + 1));
  return (signature && lowSToken(token.slice(0, dot), signature)) ?? token;
}
