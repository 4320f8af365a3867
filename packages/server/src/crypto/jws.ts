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
  return `${input}.${signature.toString("base64url")}`;
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
