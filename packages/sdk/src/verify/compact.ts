import { invalid } from "./errors.js";

/** Signature algorithms a verifier may accept. ES256 is Keyward's; EdDSA only when configured. */
export type VerifyAlgorithm = "ES256" | "EdDSA";

/** A compact JWS split and its protected header checked; the signature is not checked yet. */
export interface ParsedCompact {
  alg: VerifyAlgorithm;
  kid: string;
  /** `header.payload`, the bytes the signature covers. */
  signingInput: string;
  payloadSegment: string;
  signature: Buffer;
}

/**
 * Far larger than any token Keyward issues (hundreds of scopes fit in 16 KiB); bounds the work
 * spent on garbage and the memory a cached result can hold.
 */
export const MAX_TOKEN_CHARS = 16 * 1024;
/** ES256 signatures are r ‖ s, 32 bytes each (RFC 7518 §3.4), never DER; Ed25519's are 64 too. */
const SIGNATURE_BYTES = 64;
/**
 * Headers that would make the token name its own key (`jku`, `x5u`, `jwk`, `x5c`) or change how it
 * must be processed (`crit`, RFC 7515 §4.1.11). None is ever honoured, so a token carrying one is
 * refused outright rather than verified with the header ignored: an issuer never sends them.
 */
const FORBIDDEN_HEADERS = ["jku", "x5u", "jwk", "x5c", "crit"] as const;
const SEGMENT = /^[A-Za-z0-9_-]+$/;
const OPAQUE_CREDENTIAL = /^kw[kra]_/;

/** Accepted headers kept per parser; cleared when full, so made-up kids cannot grow it. */
const MAX_ACCEPTED_HEADERS = 64;

/**
 * A parser for one verifier: splits a compact JWS and checks its header against the pinned
 * algorithms and `at+jwt`. Every token signed with one key has the same encoded header, so a header
 * that passed is remembered by its encoded form and not parsed again; only accepted headers are
 * kept, and the checks depend on nothing but `algorithms`, fixed for the parser's life.
 */
export function createCompactParser(algorithms: ReadonlySet<VerifyAlgorithm>): (token: unknown) => ParsedCompact {
  const acceptedHeaders = new Map<string, { alg: VerifyAlgorithm; kid: string }>();
  return (token) => parseCompact(token, algorithms, acceptedHeaders);
}

function parseCompact(
  token: unknown,
  algorithms: ReadonlySet<VerifyAlgorithm>,
  acceptedHeaders: Map<string, { alg: VerifyAlgorithm; kid: string }>,
): ParsedCompact {
  if (typeof token !== "string" || token.length === 0) throw invalid("the access token is missing or not a string");
  if (token.length > MAX_TOKEN_CHARS) throw invalid("the access token is too long");
  if (OPAQUE_CREDENTIAL.test(token)) {
    throw invalid("an API key, refresh token or admin token is not an access token");
  }
  const firstDot = token.indexOf(".");
  const lastDot = token.lastIndexOf(".");
  if (firstDot <= 0 || lastDot === firstDot || token.indexOf(".", firstDot + 1) !== lastDot) {
    throw invalid("the access token is not a compact JWS");
  }
  const headerSegment = token.slice(0, firstDot);
  const payloadSegment = token.slice(firstDot + 1, lastDot);
  const signatureSegment = token.slice(lastDot + 1);
  if (!SEGMENT.test(headerSegment) || !SEGMENT.test(payloadSegment) || !SEGMENT.test(signatureSegment)) {
    throw invalid("the access token is not base64url-encoded");
  }

  let header = acceptedHeaders.get(headerSegment);
  if (header === undefined) {
    header = checkHeader(headerSegment, algorithms);
    if (acceptedHeaders.size >= MAX_ACCEPTED_HEADERS) acceptedHeaders.clear();
    acceptedHeaders.set(headerSegment, header);
  }

  const signature = strictBase64url(signatureSegment);
  if (!signature || signature.length !== SIGNATURE_BYTES) throw invalid("the access token signature is malformed");
  return {
    alg: header.alg,
    kid: header.kid,
    signingInput: token.slice(0, lastDot),
    payloadSegment,
    signature,
  };
}

function checkHeader(
  headerSegment: string,
  algorithms: ReadonlySet<VerifyAlgorithm>,
): { alg: VerifyAlgorithm; kid: string } {
  const header = decodeJsonSegment(headerSegment);
  if (!header) throw invalid("the access token header is not a JSON object");
  const alg = header.alg;
  if (typeof alg !== "string" || !algorithms.has(alg as VerifyAlgorithm)) {
    throw invalid("the access token is signed with an algorithm this verifier does not accept");
  }
  for (const name of FORBIDDEN_HEADERS) {
    if (Object.hasOwn(header, name)) throw invalid(`the access token carries a forbidden "${name}" header`);
  }
  if (typeof header.typ !== "string" || !isAccessTokenTyp(header.typ)) {
    throw invalid('the token is not an access token (typ must be "at+jwt")');
  }
  const kid = header.kid;
  if (typeof kid !== "string" || kid.length === 0) throw invalid("the access token header has no kid");
  return { alg: alg as VerifyAlgorithm, kid };
}

/** `typ` is a media type: case-insensitive, and `application/` may be left out (RFC 7515 §4.1.9). */
function isAccessTokenTyp(typ: string): boolean {
  const lower = typ.toLowerCase();
  return lower === "at+jwt" || lower === "application/at+jwt";
}

/** A base64url segment as a JSON object, or `undefined` for anything else. */
export function decodeJsonSegment(segment: string): Record<string, unknown> | undefined {
  try {
    // Invalid UTF-8 becomes U+FFFD rather than an error: harmless in a header that must still pass
    // every check, and a payload is only read once its signature holds.
    const value: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
    if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
    return value as Record<string, unknown>;
  } catch {
    // The parser's message quotes the input, and the input is part of the token: drop it.
    return undefined;
  }
}

/**
 * Node's decoder ignores a dangling character and non-zero trailing bits, so two strings could
 * decode to one signature; only the canonical encoding is accepted (the alphabet is checked above).
 */
function strictBase64url(segment: string): Buffer | undefined {
  if (segment.length % 4 === 1) return undefined;
  const bytes = Buffer.from(segment, "base64url");
  return bytes.toString("base64url") === segment ? bytes : undefined;
}
