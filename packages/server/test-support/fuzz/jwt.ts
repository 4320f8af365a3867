import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import fc from "fast-check";

/**
 * fast-check arbitraries for hostile compact JWS tokens, shared by the fuzz tests of jws.ts and
 * access-tokens.ts. Tokens signed here carry a real ES256 signature by `key`, so a refusal proves
 * the verifier judged the header or payload, not merely the signature.
 */
export interface FuzzSigner {
  kid: string;
  publicKey: KeyObject;
  /** `header.payload.signature`, header and payload given as the exact text (or bytes) to encode. */
  compact(header: string | Buffer, payload: string | Buffer): string;
}

export const b64u = (text: string | Buffer): string =>
  (typeof text === "string" ? Buffer.from(text, "utf8") : text).toString("base64url");

export function fuzzSigner(kid = "fuzz-kid-1"): FuzzSigner {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    kid,
    publicKey,
    compact(header, payload) {
      const input = `${b64u(header)}.${b64u(payload)}`;
      const signature = sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" });
      return `${input}.${signature.toString("base64url")}`;
    },
  };
}

const B64U = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** Runs of base64url characters, canonical or not. */
export const b64uSegment = (maxLength = 120) => fc.string({ unit: fc.constantFrom(...B64U), maxLength });

/** Any single UTF-16 unit (lone surrogates and control characters included). */
export const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n));

/** Strings with no structure, strings shaped like a compact JWS, and JSON in each segment. */
export const junkToken: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.string({ unit: anyUnit, maxLength: 200 }),
  fc.tuple(b64uSegment(), b64uSegment(), b64uSegment()).map((s) => s.join(".")),
  fc.array(fc.oneof(b64uSegment(40), fc.string({ maxLength: 20 })), { maxLength: 6 }).map((s) => s.join(".")),
  fc
    .tuple(fc.jsonValue(), fc.jsonValue(), fc.uint8Array({ maxLength: 80 }))
    .map(([h, p, s]) => `${b64u(JSON.stringify(h) ?? "")}.${b64u(JSON.stringify(p) ?? "")}.${b64u(Buffer.from(s))}`),
  fc.constantFrom("", ".", "..", "...", "a.b.c", "kwk_x.y.z", "Bearer a.b.c"),
);

/** Values an `alg` header must never be accepted with (Keyward pins ES256). */
export const badAlg = fc.constantFrom<unknown>(
  "none",
  "None",
  "NONE",
  "nOnE",
  "HS256",
  "HS384",
  "HS512",
  "RS256",
  "PS256",
  "ES384",
  "ES512",
  "ES256K",
  "EdDSA",
  "es256",
  "ES256 ",
  " ES256",
  "ES256\u0000",
  "",
  null,
  0,
  true,
  ["ES256"],
  { alg: "ES256" },
);

/** Headers that name their own key or change processing: refused whatever their value. */
export const forbiddenHeader = fc.constantFrom("jku", "jwk", "x5u", "x5c", "crit");

/**
 * Header objects derived from a valid `{alg: "ES256", typ, kid}`, each with one thing wrong: the
 * algorithm, a key-naming or `crit` header, the `typ`, or the `kid`.
 */
export function hostileHeader(valid: { alg: string; typ: string; kid: string }): fc.Arbitrary<Record<string, unknown>> {
  return fc.oneof(
    badAlg.map((alg) => ({ ...valid, alg })),
    fc
      .tuple(forbiddenHeader, fc.oneof(fc.jsonValue(), fc.constantFrom("https://evil.example/jwks.json", [], {})))
      .map(([name, value]) => ({ ...valid, [name]: value })),
    fc
      .constantFrom<unknown>("JWT", "jwt", "at+jwt2", "at+jw", "", "dpop+jwt", "application/jwt", 1, null, ["at+jwt"])
      .map((typ) => ({ ...valid, typ })),
    fc.constantFrom<unknown>(undefined, null, 1, {}, ["x"]).map((kid) => {
      const { kid: _, ...rest } = valid;
      return kid === undefined ? rest : { ...rest, kid };
    }),
  );
}

/** Exact header texts that are not one acceptable JSON object, or whose last duplicate is hostile. */
export function hostileHeaderText(valid: { alg: string; typ: string; kid: string }): fc.Arbitrary<string> {
  const base = JSON.stringify(valid).slice(0, -1);
  return fc.oneof(
    // RFC 7515 §5.2 lets a verifier keep the last of duplicated names: the last one is hostile here.
    fc.constantFrom(
      `${base},"alg":"none"}`,
      `${base},"alg":"HS256"}`,
      `${base},"typ":"JWT"}`,
      `${base},"kid":7}`,
      `${base},"jku":"https://evil.example/jwks.json"}`,
      `${base},"crit":["exp"]}`,
    ),
    fc
      .jsonValue()
      .filter((v) => typeof v !== "object" || v === null || Array.isArray(v))
      .map((v) => JSON.stringify(v)),
    fc.constantFrom(
      "",
      "{",
      "}",
      "[]",
      "null",
      `[${JSON.stringify(valid)}]`,
      `${JSON.stringify(valid)}x`,
      "{'alg':'ES256'}",
    ),
    fc.string({ unit: anyUnit, maxLength: 60 }).filter((s) => {
      try {
        JSON.parse(s);
        return false;
      } catch {
        return true;
      }
    }),
  );
}

/** Payload texts that are not a JSON object. */
export const nonObjectPayloadText: fc.Arbitrary<string> = fc.oneof(
  fc
    .jsonValue()
    .filter((v) => typeof v !== "object" || v === null || Array.isArray(v))
    .map((v) => JSON.stringify(v)),
  fc.constantFrom("", "{", "[{}]", "null", "{}x"),
);

/**
 * One change to a token string: a character replaced, removed or inserted; padding, `+`/`/`,
 * whitespace or non-zero trailing bits in one segment (the non-canonical base64url forms); a segment
 * dropped, repeated or swapped; a truncation. Always a different string.
 */
export function mutated(token: string): fc.Arbitrary<string> {
  const segments = token.split(".");
  const n = token.length;
  const inSegment = (f: (s: string) => string) =>
    fc.nat({ max: segments.length - 1 }).map((i) => segments.map((s, j) => (i === j ? f(s) : s)).join("."));
  return fc
    .oneof(
      fc
        .tuple(fc.nat({ max: n - 1 }), fc.oneof(fc.constantFrom(...B64U, ".", "=", "+", "/"), anyUnit))
        .map(([at, c]) => token.slice(0, at) + c + token.slice(at + 1)),
      fc.nat({ max: n - 1 }).map((at) => token.slice(0, at) + token.slice(at + 1)),
      fc
        .tuple(fc.nat({ max: n }), fc.oneof(fc.constantFrom(...B64U, ".", "=", " ", "\n"), anyUnit))
        .map(([at, c]) => token.slice(0, at) + c + token.slice(at)),
      fc.nat({ max: n - 1 }).map((keep) => token.slice(0, keep)),
      fc.constantFrom("=", "==", "===", " ", "\n", "\t").chain((pad) => inSegment((s) => s + pad)),
      inSegment((s) => (s.includes("-") || s.includes("_") ? s.replaceAll("-", "+").replaceAll("_", "/") : `${s}+`)),
      inSegment(nonCanonicalTail),
      fc.constantFrom(
        `${token}.`,
        `.${token}`,
        `${token}.${segments[2]}`,
        [segments[1], segments[0], segments[2]].join("."),
        [segments[0], segments[1]].join("."),
        [segments[0], segments[0], segments[2]].join("."),
        ` ${token}`,
        `${token} `,
        `${token}\n`,
      ),
    )
    .filter((t) => t !== token);
}

/**
 * The same bytes under a lenient decoder, but not the canonical encoding: the unused low bits of
 * the last character set (or, when the length leaves none unused, a character appended).
 */
export function nonCanonicalTail(segment: string): string {
  const unusedBits = segment.length % 4 === 2 ? 4 : segment.length % 4 === 3 ? 2 : 0;
  const last = segment.at(-1);
  if (unusedBits === 0 || last === undefined) return `${segment}A`;
  const value = B64U.indexOf(last);
  const changed = B64U[value ^ ((1 << unusedBits) - 1)] as string;
  return segment.slice(0, -1) + changed;
}
