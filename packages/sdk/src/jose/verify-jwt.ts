import { type VerificationKey, verifySignature } from "./algorithms.js";
import { type ClaimRules, validateClaims } from "./claims.js";
import { decodePayload, type HeaderPolicy, parseCompact } from "./compact.js";
import { fail, type JoseResult } from "./failure.js";

export interface JwtVerifyOptions extends HeaderPolicy {
  /** The caller's key for a `kid`; `undefined` is `unknown_kid`. Memory only: this call is synchronous. */
  key: (kid: string) => VerificationKey | undefined;
  /** Registered-claim rules; omitted, the claims are not checked (a bare JWS). */
  claims?: ClaimRules;
  /** Seconds since the epoch, for the time claims. Default `Date.now() / 1000`. */
  nowS?: number;
  maxTokenChars?: number;
}

export interface VerifiedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

/**
 * The whole check in one call, for keys held in memory: header policy, key by `kid`, signature,
 * then the payload (parsed only once the signature holds) and its registered claims.
 *
 * @example
 * ```ts
 * import { verifyJwt } from "@keyward/sdk/jose";
 *
 * const r = verifyJwt(token, {
 *   algorithms: new Set(["ES256"]),
 *   typ: { accept: ["at+jwt"] },
 *   key: (kid) => keys.get(kid),
 *   claims: { issuer: "https://keyward.internal", audience: new Set(["billing"]), required: ["exp"] },
 * });
 * if (!r.ok) console.warn("refused:", r.code, r.claim ?? r.header ?? "");
 * ```
 */
export function verifyJwt(token: unknown, options: JwtVerifyOptions): JoseResult<VerifiedJwt> {
  const parsed = parseCompact(token, options);
  if (!parsed.ok) return parsed;
  const key = options.key(parsed.value.kid);
  if (key === undefined) return fail("unknown_kid");
  const signed = verifySignature(parsed.value, key);
  if (!signed.ok) return signed;
  const payload = decodePayload(parsed.value);
  if (!payload.ok) return payload;
  if (options.claims !== undefined) {
    const checked = validateClaims(payload.value, options.claims, options.nowS ?? Date.now() / 1000);
    if (!checked.ok) return checked;
  }
  return { ok: true, value: { header: parsed.value.header, payload: payload.value } };
}
