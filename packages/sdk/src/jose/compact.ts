import { JWS_ALGORITHMS, type JwsAlgorithm, SIGNATURE_BYTES } from "./algorithms.js";
import { base64url, decodeJsonObject } from "./base64url.js";
import { fail, type JoseResult, MAX_TOKEN_CHARS } from "./failure.js";

/**
 * What a caller accepts in a protected header (RFC 8725 §3.1, §3.11): the algorithms are pinned by
 * the caller, never taken from the token; `kid` is only a lookup key for the caller's own keys.
 */
export interface HeaderPolicy {
  /** The accepted algorithms. `none` and HMAC are never accepted, whatever is listed here. */
  algorithms: ReadonlySet<JwsAlgorithm>;
  /**
   * Accepted `typ` values, compared as media types (case-insensitive, `application/` optional,
   * RFC 7515 §4.1.9). Omitted: any `typ`. `optional: true` also accepts a header without one.
   */
  typ?: { accept: readonly string[]; optional?: boolean };
}

export interface CheckedHeader {
  alg: JwsAlgorithm;
  kid: string;
  header: Record<string, unknown>;
}

/** The three segments of a compact JWS, in the base64url alphabet; nothing decoded yet. */
export interface CompactSegments {
  headerSegment: string;
  payloadSegment: string;
  signatureSegment: string;
  /** `header.payload`, the bytes the signature covers. */
  signingInput: string;
}

/** A compact JWS with its header checked and its signature decoded; the signature is not verified yet. */
export interface ParsedJws extends CheckedHeader {
  signingInput: string;
  /** Decoded only once the signature holds (`decodePayload`): unauthenticated JSON is never read. */
  payloadSegment: string;
  signature: Buffer;
}

/**
 * Headers that would make the token name its own key (`jku`, `x5u`, `jwk`, `x5c`) or change how it
 * must be processed (`crit`, RFC 7515 §4.1.11; `b64`, RFC 7797, which only means anything under
 * `crit`). None is ever honoured, so a token carrying one is refused outright rather than verified
 * with the header ignored: the issuers we verify never send them.
 */
export const FORBIDDEN_HEADERS = ["jku", "x5u", "jwk", "x5c", "crit", "b64"] as const;
const SEGMENT = /^[A-Za-z0-9_-]*$/;

/**
 * Splits a compact JWS (exactly three segments, base64url alphabet, at most `maxChars`); the
 * first step of {@link parseCompact}, for a caller that memoises header checks.
 *
 * @example
 * ```ts
 * import { splitCompact } from "@keyward/sdk/jose";
 *
 * const split = splitCompact(token, 32 * 1024);
 * if (!split.ok) return split.code; // "malformed" or "too_large"
 * ```
 */
export function splitCompact(token: unknown, maxChars = MAX_TOKEN_CHARS): JoseResult<CompactSegments> {
  if (typeof token !== "string" || token.length === 0) return fail("malformed");
  if (token.length > maxChars) return fail("too_large");
  const firstDot = token.indexOf(".");
  const lastDot = token.lastIndexOf(".");
  if (firstDot <= 0 || lastDot === firstDot || token.indexOf(".", firstDot + 1) !== lastDot) return fail("malformed");
  const headerSegment = token.slice(0, firstDot);
  const payloadSegment = token.slice(firstDot + 1, lastDot);
  const signatureSegment = token.slice(lastDot + 1);
  if (!SEGMENT.test(headerSegment) || !SEGMENT.test(payloadSegment) || !SEGMENT.test(signatureSegment)) {
    return fail("malformed");
  }
  return {
    ok: true,
    value: { headerSegment, payloadSegment, signatureSegment, signingInput: token.slice(0, lastDot) },
  };
}

/**
 * Decodes a protected header and applies `policy`: alg, forbidden headers, typ, kid, in that order.
 *
 * @example
 * ```ts
 * import { checkHeader } from "@keyward/sdk/jose";
 *
 * const h = checkHeader(segments.headerSegment, { algorithms: new Set(["ES256"]) });
 * if (!h.ok && h.code === "forbidden_header") console.warn("refused header", h.header);
 * ```
 */
export function checkHeader(headerSegment: string, policy: HeaderPolicy): JoseResult<CheckedHeader> {
  const header = decodeJsonObject(headerSegment);
  if (!header) return fail("malformed");
  const alg = header.alg;
  if (
    typeof alg !== "string" ||
    !JWS_ALGORITHMS.has(alg as JwsAlgorithm) ||
    !policy.algorithms.has(alg as JwsAlgorithm)
  ) {
    return fail("unsupported_alg");
  }
  for (const name of FORBIDDEN_HEADERS) {
    if (Object.hasOwn(header, name)) return fail("forbidden_header", { header: name });
  }
  if (policy.typ !== undefined && !typAccepted(header.typ, policy.typ)) return fail("wrong_type");
  // A map key only: never a path, a URL or anything fetched.
  const kid = header.kid;
  if (typeof kid !== "string" || kid.length === 0) return fail("missing_kid");
  return { ok: true, value: { alg: alg as JwsAlgorithm, kid, header } };
}

/**
 * The signature in its canonical encoding and, where the algorithm fixes it, its exact size.
 *
 * @example
 * ```ts
 * import { decodeSignature } from "@keyward/sdk/jose";
 *
 * const sig = decodeSignature("ES256", segments.signatureSegment); // 64 bytes r ‖ s, or "malformed"
 * ```
 */
export function decodeSignature(alg: JwsAlgorithm, segment: string): JoseResult<Buffer> {
  const signature = base64url.decode(segment);
  const size = SIGNATURE_BYTES[alg];
  if (!signature || signature.length === 0 || (size !== undefined && signature.length !== size)) {
    return fail("malformed");
  }
  return { ok: true, value: signature };
}

/**
 * Splits a compact JWS and checks its header against `policy`. Bad tokens are results, never
 * throws, and no failure quotes the token.
 *
 * @example
 * ```ts
 * import { parseCompact } from "@keyward/sdk/jose";
 *
 * const parsed = parseCompact(token, { algorithms: new Set(["ES256"]), typ: { accept: ["at+jwt"] } });
 * if (!parsed.ok) return deny(parsed.code); // "malformed", "unsupported_alg", "forbidden_header", …
 * const key = myKeys.get(parsed.value.kid);
 * ```
 */
export function parseCompact(token: unknown, policy: HeaderPolicy & { maxTokenChars?: number }): JoseResult<ParsedJws> {
  const split = splitCompact(token, policy.maxTokenChars);
  if (!split.ok) return split;
  const checked = checkHeader(split.value.headerSegment, policy);
  if (!checked.ok) return checked;
  const signature = decodeSignature(checked.value.alg, split.value.signatureSegment);
  if (!signature.ok) return signature;
  return {
    ok: true,
    value: {
      ...checked.value,
      signingInput: split.value.signingInput,
      payloadSegment: split.value.payloadSegment,
      signature: signature.value,
    },
  };
}

/**
 * The payload as a JSON object; call it once the signature holds.
 *
 * @example
 * ```ts
 * import { decodePayload, verifySignature } from "@keyward/sdk/jose";
 *
 * if (verifySignature(parsed, key).ok) {
 *   const payload = decodePayload(parsed); // { ok: true, value: {...} } or "malformed"
 * }
 * ```
 */
export function decodePayload(jws: Pick<ParsedJws, "payloadSegment">): JoseResult<Record<string, unknown>> {
  const payload = decodeJsonObject(jws.payloadSegment);
  return payload ? { ok: true, value: payload } : fail("malformed");
}

function typAccepted(typ: unknown, rule: NonNullable<HeaderPolicy["typ"]>): boolean {
  if (typ === undefined) return rule.optional === true;
  if (typeof typ !== "string") return false;
  const wanted = normalizeTyp(typ);
  return rule.accept.some((accepted) => normalizeTyp(accepted) === wanted);
}

/** `typ` is a media type: case-insensitive, and `application/` may be left out (RFC 7515 §4.1.9). */
function normalizeTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith("application/") ? lower.slice("application/".length) : lower;
}
