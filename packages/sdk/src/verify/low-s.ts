/**
 * ECDSA malleability, for ES256 only. If (r, s) is a valid P-256 signature, so is (r, n − s) over
 * the same bytes: anyone holding a token can make a second string for it with the same header
 * and claims. The verifier accepts both: Keyward signs low-S since it learned to, but tokens from
 * an older server (and from any server not yet upgraded while this SDK already is) are high-S
 * about half the time, and refusing them would refuse valid tokens. Instead both strings are one
 * token to the verifier: its result cache keys ES256 tokens by the low-S form (`lowSToken`).
 * Callers that key anything by a token (a replay set, a deny list) should use `jti`, which a flip
 * cannot change. EdDSA (Ed25519) signatures are not malleable this way: never touched.
 * The server follows the same rule: packages/server/src/crypto/jws.ts.
 */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const P256_HALF_N = Buffer.from((P256_N >> 1n).toString(16).padStart(64, "0"), "hex");

/**
 * `signingInput` with the low-S form of an ES256 `signature` (r ‖ s, 64 bytes), or `undefined`
 * when the signature is already low-S (or not a possible one: verification refuses it).
 */
export function lowSToken(signingInput: string, signature: Buffer): string | undefined {
  if (signature.length !== 64) return undefined;
  const s = signature.subarray(32);
  if (Buffer.compare(s, P256_HALF_N) <= 0) return undefined;
  const value = BigInt(`0x${s.toString("hex")}`);
  if (value >= P256_N) return undefined;
  const low = Buffer.from((P256_N - value).toString(16).padStart(64, "0"), "hex");
  return `${signingInput}.${Buffer.concat([signature.subarray(0, 32), low]).toString("base64url")}`;
}
