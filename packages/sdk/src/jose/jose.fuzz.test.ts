import { generateKeyPairSync, sign } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JwsAlgorithm } from "./algorithms.js";
import { base64url, decodeJsonObject } from "./base64url.js";
import { validateClaims } from "./claims.js";
import { parseCompact } from "./compact.js";
import { canonicalToken } from "./low-s.js";
import { type JwtVerifyOptions, verifyJwt } from "./verify-jwt.js";

/**
 * Property tests of the JOSE core: whatever arrives, every entry point answers with a result and
 * never throws, a refusal quotes no part of its input, and only an untouched signed token passes.
 */
const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const ALGS: ReadonlySet<JwsAlgorithm> = new Set(["ES256", "EdDSA", "RS256"]);
const NOW = 1_800_000_000;
const header = { alg: "ES256", typ: "at+jwt", kid: "k1" };
const options: JwtVerifyOptions = {
  algorithms: ALGS,
  typ: { accept: ["at+jwt"] },
  key: (kid) => (kid === "k1" ? { key: publicKey, algorithms: ALGS } : undefined),
  claims: { issuer: "https://i.test", audience: new Set(["api"]), required: ["exp"] },
  nowS: NOW,
};

const b64 = (v: string | Buffer) => Buffer.from(v).toString("base64url");
function signed(headerText: string, payloadText: string): string {
  const input = `${b64(headerText)}.${b64(payloadText)}`;
  return `${input}.${sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
}

const B64U = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const segment = fc.string({ unit: fc.constantFrom(...B64U), maxLength: 80 });
const junk = fc.oneof(
  fc.anything(),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.tuple(segment, segment, segment).map((s) => s.join(".")),
  fc.array(fc.oneof(segment, fc.string({ maxLength: 10 })), { maxLength: 6 }).map((s) => s.join(".")),
  fc
    .tuple(fc.jsonValue(), fc.jsonValue(), fc.uint8Array({ maxLength: 140 }))
    .map(([h, p, s]) => `${b64(JSON.stringify(h) ?? "")}.${b64(JSON.stringify(p) ?? "")}.${b64(Buffer.from(s))}`),
);
const claims = fc.record({
  iss: fc.constantFrom("https://i.test", "https://j.test"),
  aud: fc.oneof(fc.constant("api"), fc.array(fc.constantFrom("api", "web", 1, null)), fc.jsonValue()),
  exp: fc.oneof(fc.integer({ min: NOW - 100, max: NOW + 100 }), fc.jsonValue()),
  nbf: fc.option(fc.oneof(fc.integer({ min: NOW - 100, max: NOW + 100 }), fc.jsonValue()), { nil: undefined }),
  iat: fc.option(fc.oneof(fc.double(), fc.jsonValue()), { nil: undefined }),
});
/** Headers near the accepted one: other algs and typs, kids of any type, extra members. */
const headers = fc.record({
  alg: fc.oneof(fc.constantFrom("ES256", "none", "HS256", "RS256", "EdDSA", "es256"), fc.jsonValue()),
  typ: fc.option(fc.oneof(fc.constantFrom("at+jwt", "JWT", "application/at+jwt"), fc.jsonValue()), { nil: undefined }),
  kid: fc.oneof(fc.constantFrom("k1", "", "k2"), fc.jsonValue()),
  extra: fc.option(fc.constantFrom("jku", "x5u", "jwk", "x5c", "crit", "b64", "x5t", "cty"), { nil: undefined }),
});

function noThrow<T>(f: () => T): T {
  let out: T | undefined;
  expect(() => {
    out = f();
  }).not.toThrow();
  return out as T;
}

describe("JOSE core, fuzzed", () => {
  it("never throws on junk, and refuses it without quoting it", () => {
    fc.assert(
      fc.property(junk, (token) => {
        const r = noThrow(() => verifyJwt(token, options));
        expect(r.ok).toBe(false);
        if (typeof token === "string") {
          for (const part of token.split(".").filter((p) => p.length >= 8))
            expect(JSON.stringify(r)).not.toContain(part);
          noThrow(() => canonicalToken(token));
          noThrow(() => base64url.decode(token));
          noThrow(() => decodeJsonObject(token));
        }
        noThrow(() => parseCompact(token, options));
      }),
      { numRuns: 1500 },
    );
  });

  it("accepts a signed token exactly when its header and claims meet the policy", () => {
    fc.assert(
      fc.property(headers, claims, (h, c) => {
        const { extra, ...fields } = h;
        const hdr = extra === undefined ? fields : { ...fields, [extra]: "x" };
        const r = noThrow(() => verifyJwt(signed(JSON.stringify(hdr), JSON.stringify(c)), options));
        const headerOk =
          h.alg === "ES256" &&
          (h.typ === "at+jwt" || h.typ === "application/at+jwt") &&
          h.kid === "k1" &&
          (extra === undefined || extra === "x5t" || extra === "cty");
        const audList = typeof c.aud === "string" ? [c.aud] : c.aud;
        const claimsOk =
          c.iss === "https://i.test" &&
          Array.isArray(audList) &&
          audList.every((a) => typeof a === "string") &&
          audList.includes("api") &&
          typeof c.exp === "number" &&
          NOW < c.exp &&
          (c.nbf === undefined || (typeof c.nbf === "number" && c.nbf <= NOW)) &&
          (c.iat === undefined || (typeof c.iat === "number" && Number.isFinite(c.iat) && c.iat <= NOW));
        expect(r.ok).toBe(headerOk && claimsOk);
      }),
      { numRuns: 600 },
    );
  });

  it("refuses any single-character change to a valid token", () => {
    const token = signed(JSON.stringify(header), JSON.stringify({ iss: "https://i.test", aud: "api", exp: NOW + 60 }));
    expect(verifyJwt(token, options).ok).toBe(true);
    fc.assert(
      fc.property(fc.nat({ max: token.length - 1 }), fc.constantFrom(...B64U, ".", "=", "+"), (at, ch) => {
        const changed = token.slice(0, at) + ch + token.slice(at + 1);
        if (changed === token) return;
        expect(noThrow(() => verifyJwt(changed, options)).ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it("validateClaims never throws on any payload", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.double(), (payload, now) => {
        noThrow(() => validateClaims(payload, options.claims ?? {}, now));
      }),
      { numRuns: 500 },
    );
  });
});
