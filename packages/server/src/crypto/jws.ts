import { type KeyObject, sign, verify } from "node:crypto";
import { base64url } from "./base64url.js";

/**
 * Compact JWS with ES256 only. Written on node:crypto rather than jose because signing sits on the
 * gateway's request path: the header is encoded once per key and typ, and a signature is one
 * native call. Verification follows RFC 8725: the algorithm is pinned, `kid` is only a map key,
 * and headers that point at other keys are refused rather than followed.
 */
export interface VerifiedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

export type VerifyResult = { ok: true; value: VerifiedJwt } | { ok: false; reason: string };

export const JWS_ALG = "ES256";
/** Larger than any token Keyward issues (hundreds of scopes); bounds work spent on garbage. */
const MAX_TOKEN_CHARS = 16 * 1024;
/** ES256 signatures are r ‖ s, 32 bytes each (RFC 7518 §3.4), never DER. */
const SIGNATURE_BYTES = 64;
/**
 * Headers that would make a token name its own key (`jku`, `x5u`, `jwk`, `x5c`) or change how it
 * must be processed (`crit`): never honoured, so a token carrying one is refused outright.
 */
export const FORBIDDEN_HEADERS = ["jku", "x5u", "x5c", "jwk", "crit"] as const;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The encoded protected header `{alg, typ, kid}`; computed once per key and typ by the caller. */
export function encodeHeader(kid: string, typ: string): string {
  return base64url.encode(JSON.stringify({ alg: JWS_ALG, typ, kid }));
}

export function signCompact(encodedHeader: string, claims: Record<string, unknown>, key: KeyObject): string {
  const input = `${encodedHeader}.${base64url.encode(JSON.stringify(claims))}`;
  const signature = sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
  return `${input}.${(lowS(signature) ?? signature).toString("base64url")}`;
}

/*
 * ECDSA malleability. If (r, s) is a valid P-256 signature, so is (r, n − s), over the same
 * bytes: anyone holding a token can make a second string for it, with the same header and
 * claims. It grants nothing new, but anything keyed by the token's string would see two tokens.
 * OpenSSL's signer gives s > n/2 about half the time.
 *
 * The rule (the SDK verifier follows it too):
 * - Keyward signs low-S only (`signCompact`), so every token issued from this version on has one
 *   canonical string.
 * - Verification still accepts high-S. Refusing it would void, at upgrade, the tokens issued
 *   before it (up to token_max_lifetime_s) and, during a rolling upgrade, half the tokens of the
 *   replicas not yet upgraded; and an SDK upgraded before its server would refuse half of that
 *   server's tokens.
 * - So a token's identity is never its string: revocation, the upstream-JWT cache, SSE
 *   disconnection and audit use `jti`, which a flip cannot change. The verified-token cache of
 *   tokens/access-tokens.ts is keyed by the string, but re-checks expiry and revocation (by jti)
 *   on every hit, so a flipped copy is at worst a second entry with the same fate. A cache or
 *   set that decides anything by a token's string must key it by `canonicalToken(token)`.
 * - Once every replica has signed low-S for longer than the longest token lifetime, high-S could
 *   be refused outright; nothing gained today is worth the tokens that would break.
 * - Tokens of trusted external issuers (tokens/external-jwt.ts) are verified as their issuers
 *   sign them: other IdPs legitimately emit high-S, and no string of theirs is used as an identity.
 */
/** The order n of P-256, and n/2 as the 32 bytes that `s` is compared with. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const P256_HALF_N = Buffer.from((P256_N >> 1n).toString(16).padStart(64, "0"), "hex");

/** `r ‖ (n − s)` when `s > n/2`; `undefined` when the signature is already low-S. */
export function lowS(signature: Buffer): Buffer | undefined {
  if (signature.length !== SIGNATURE_BYTES) return undefined;
  const s = signature.subarray(32);
  if (Buffer.compare(s, P256_HALF_N) <= 0) return undefined;
  const value = BigInt(`0x${s.toString("hex")}`);
  if (value >= P256_N) return undefined; // not a valid s at all: verification refuses it
  const flipped = (P256_N - value).toString(16).padStart(64, "0");
  return Buffer.concat([signature.subarray(0, 32), Buffer.from(flipped, "hex")]);
}

/**
 * The token with its ES256 signature in low-S form: the same string for (r, s) and (r, n − s).
 * Anything that is not a three-part compact JWS with a 64-byte signature comes back unchanged
 * (it will fail verification anyway). Costs a decode only; the BigInt only for high-S.
 */
export function canonicalToken(token: string): string {
  const dot = token.lastIndexOf(".");
  if (dot < 0) return token;
  const signature = base64url.decode(token.slice(dot + 1));
  const low = signature && lowS(signature);
  return low ? `${token.slice(0, dot)}.${low.toString("base64url")}` : token;
}

/** Checks the signature of a compact ES256 JWS against `keys`; bad tokens are results, not throws. */
export function verifyCompact(token: unknown, keys: ReadonlyMap<string, KeyObject>, typ?: string): VerifyResult {
  if (typeof token !== "string" || token.length > MAX_TOKEN_CHARS) return fail("malformed token");
  const parts = token.split(".");
  if (parts.length !== 3) return fail("malformed token");
  const [h, p, s] = parts as [string, string, string];

  const header = decodeJsonSegment(h);
  if (!header) return fail("malformed header");
  if (header.alg !== JWS_ALG) return fail("unsupported alg");
  for (const name of FORBIDDEN_HEADERS) {
    if (Object.hasOwn(header, name)) return fail(`forbidden header ${name}`);
  }
  if (typeof header.kid !== "string") return fail("missing kid");
  const key = keys.get(header.kid);
  if (!key) return fail("unknown kid");
  if (typ !== undefined && (typeof header.typ !== "string" || normalizeTyp(header.typ) !== normalizeTyp(typ))) {
    return fail("unexpected typ");
  }

  const signature = base64url.decode(s);
  if (!signature || signature.length !== SIGNATURE_BYTES) return fail("malformed signature");
  if (!base64url.decode(p)) return fail("malformed payload");
  let valid = false;
  try {
    valid = verify("sha256", Buffer.from(`${h}.${p}`), { key, dsaEncoding: "ieee-p1363" }, signature);
  } catch {
    valid = false;
  }
  if (!valid) return fail("bad signature");

  // Parsed only once the signature holds, so unauthenticated JSON never reaches the caller.
  const payload = decodeJsonSegment(p);
  if (!payload) return fail("malformed payload");
  return { ok: true, value: { header, payload } };
}

function fail(reason: string): VerifyResult {
  return { ok: false, reason };
}

/** A strict-base64url segment holding a UTF-8 JSON object, or `undefined` for anything else. */
export function decodeJsonSegment(part: string): Record<string, unknown> | undefined {
  const bytes = base64url.decode(part);
  if (!bytes || bytes.length === 0) return undefined;
  try {
    const value: unknown = JSON.parse(utf8.decode(bytes));
    if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
    return value as Record<string, unknown>;
  } catch {
    // The parser's message quotes the input, and the input is part of a token: drop it.
    return undefined;
  }
}

/** `typ` is a media type: case-insensitive, and `application/` may be left out (RFC 7515 §4.1.9). */
function normalizeTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith("application/") ? lower.slice("application/".length) : lower;
}
