import { type KeyObject, sign } from "node:crypto";
import { base64url } from "./base64url.js";
import { lowS } from "./low-s.js";

/**
 * The encoded protected header `{alg: "ES256", typ, kid}`. Every token signed with one key and typ
 * has the same one, so a signer computes it once and passes it to {@link signCompact}.
 *
 * @example
 * ```ts
 * import { encodeEs256Header, signCompact } from "@keyward/sdk/jose";
 *
 * const header = encodeEs256Header(kid, "at+jwt");
 * const token = signCompact(header, { sub: "user:42", exp }, privateKey);
 * ```
 */
export function encodeEs256Header(kid: string, typ: string): string {
  return base64url.encode(JSON.stringify({ alg: "ES256", typ, kid }));
}

/**
 * A compact ES256 JWS over `claims`, signed with a P-256 private key, with its signature in low-S
 * form (low-s.ts): a token Keyward issues has exactly one string. One native call per token.
 *
 * @example
 * ```ts
 * import { encodeEs256Header, signCompact } from "@keyward/sdk/jose";
 *
 * const token = signCompact(encodeEs256Header(kid, "JWT"), { iss, sub, exp }, privateKey);
 * ```
 */
export function signCompact(encodedHeader: string, claims: Record<string, unknown>, key: KeyObject): string {
  const input = `${encodedHeader}.${base64url.encode(JSON.stringify(claims))}`;
  const signature = sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
  return `${input}.${(lowS(signature) ?? signature).toString("base64url")}`;
}
