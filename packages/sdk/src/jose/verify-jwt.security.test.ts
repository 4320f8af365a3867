import { createHmac, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { JwsAlgorithm, VerificationKey } from "./algorithms.js";
import { parseCompact } from "./compact.js";
import { type JoseFailureCode, type JoseResult, MAX_TOKEN_CHARS } from "./failure.js";
import { canonicalToken, lowS } from "./low-s.js";
import { encodeEs256Header, signCompact } from "./sign.js";
import { type JwtVerifyOptions, type VerifiedJwt, verifyJwt } from "./verify-jwt.js";

const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ed = generateKeyPairSync("ed25519");
const ES256: ReadonlySet<JwsAlgorithm> = new Set(["ES256"]);
const KID = "k1";
const NOW_S = 1_800_000_000;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const claims = { iss: "https://issuer.test", aud: "api", sub: "user:1", exp: NOW_S + 60, iat: NOW_S };

const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** A token with any header, signed as `alg` with `key` (ES*: r ‖ s; RS/EdDSA as node signs them). */
function forge(header: Record<string, unknown>, payload: unknown, key: KeyObject = ec.privateKey, alg = "ES256") {
  const input = `${b64(header)}.${b64(payload)}`;
  const hash = alg === "EdDSA" ? null : `sha${alg.slice(2)}`;
  const sig = sign(hash, Buffer.from(input), alg.startsWith("ES") ? { key, dsaEncoding: "ieee-p1363" } : key);
  return `${input}.${sig.toString("base64url")}`;
}

const options = (over: Partial<JwtVerifyOptions> = {}): JwtVerifyOptions => ({
  algorithms: ES256,
  typ: { accept: ["at+jwt"] },
  key: (kid) => (kid === KID ? { key: ec.publicKey, algorithms: ES256 } : undefined),
  claims: { issuer: claims.iss, audience: new Set(["api"]), required: ["exp"] },
  nowS: NOW_S,
  ...over,
});
const header = { alg: "ES256", typ: "at+jwt", kid: KID };
const good = () => signCompact(encodeEs256Header(KID, "at+jwt"), claims, ec.privateKey);

function refused(result: JoseResult<VerifiedJwt>, code: JoseFailureCode) {
  expect(result.ok).toBe(false);
  if (!result.ok) expect(result.code).toBe(code);
  return result;
}

describe("verifyJwt: every refusal is a typed code", () => {
  it("control: the untouched token verifies, header and claims as signed", () => {
    const r = verifyJwt(good(), options());
    expect(r).toEqual({ ok: true, value: { header, payload: claims } });
  });

  it.each<[JoseFailureCode, () => unknown, Partial<JwtVerifyOptions>?]>([
    ["malformed", () => 42],
    ["malformed", () => "a.b"],
    ["malformed", () => `${good()}=`],
    ["malformed", () => `${b64("[1]")}.${b64(claims)}.${b64("x")}`],
    ["too_large", () => `${good()}${"A".repeat(MAX_TOKEN_CHARS)}`],
    ["unsupported_alg", () => forge({ ...header, alg: "ES384" }, claims)],
    ["forbidden_header", () => forge({ ...header, crit: ["exp"] }, claims)],
    ["wrong_type", () => forge({ ...header, typ: "JWT" }, claims)],
    ["missing_kid", () => forge({ alg: "ES256", typ: "at+jwt" }, claims)],
    ["unknown_kid", () => forge({ ...header, kid: "other" }, claims)],
    ["key_mismatch", good, { key: () => ({ key: ec.publicKey, algorithms: new Set(["EdDSA"]) }) }],
    ["bad_signature", () => forge(header, claims, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey)],
    ["invalid_claim", () => forge(header, { ...claims, exp: "soon" })],
    ["wrong_issuer", () => forge(header, { ...claims, iss: "https://other.test" })],
    ["wrong_audience", () => forge(header, { ...claims, aud: ["web"] })],
    ["expired", () => forge(header, { ...claims, exp: NOW_S })],
    ["not_yet_valid", () => forge(header, { ...claims, nbf: NOW_S + 1 })],
  ])("%s", (code, token, over) => {
    refused(verifyJwt(token(), options(over)), code);
  });

  it("names the header or claim concerned, and never any part of the token", () => {
    const token = forge(header, { ...claims, iat: NOW_S + 1 });
    const r = refused(verifyJwt(token, options()), "not_yet_valid");
    expect(r).toEqual({ ok: false, code: "not_yet_valid", claim: "iat" });
    expect(
      refused(verifyJwt(forge({ ...header, x5u: "https://a.test/c" }, claims), options()), "forbidden_header"),
    ).toEqual({ ok: false, code: "forbidden_header", header: "x5u" });
  });
});

describe("header policy", () => {
  it.each(["jku", "x5u", "jwk", "x5c", "crit", "b64"])("refuses a %s header on a validly signed token", (name) => {
    const r = verifyJwt(
      forge({ ...header, [name]: name === "b64" ? false : "https://attacker.test" }, claims),
      options(),
    );
    expect(r).toEqual({ ok: false, code: "forbidden_header", header: name });
  });

  it("refuses the embedded-key attack: signed by the attacker's key, which the token carries", () => {
    const attacker = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = attacker.publicKey.export({ format: "jwk" });
    refused(verifyJwt(forge({ ...header, jwk }, claims, attacker.privateKey), options()), "forbidden_header");
  });

  it("accepts typ as a media type, and a missing typ only when the policy says optional", () => {
    expect(verifyJwt(forge({ ...header, typ: "application/AT+JWT" }, claims), options()).ok).toBe(true);
    const bare = forge({ alg: "ES256", kid: KID }, claims);
    refused(verifyJwt(bare, options()), "wrong_type");
    expect(verifyJwt(bare, options({ typ: { accept: ["JWT"], optional: true } })).ok).toBe(true);
    expect(verifyJwt(forge({ ...header, typ: "JWT" }, claims), options({ typ: undefined as never })).ok).toBe(true);
  });
});

describe("algorithm confusion", () => {
  it("refuses alg none, with or without a signature, whatever the caller pinned", () => {
    const none = `${b64({ ...header, alg: "none" })}.${b64(claims)}.`;
    refused(verifyJwt(none, options()), "unsupported_alg");
    refused(verifyJwt(none, options({ algorithms: new Set(["none" as JwsAlgorithm]) })), "unsupported_alg");
    refused(verifyJwt(`${b64({ ...header, alg: "none" })}.${b64(claims)}`, options()), "malformed");
  });

  it("refuses HS256 keyed with the public key's bytes, even when a caller lists HS256", () => {
    const publicKey = ec.publicKey;
    for (const secret of [
      JSON.stringify(publicKey.export({ format: "jwk" })),
      publicKey.export({ format: "pem", type: "spki" }),
      publicKey.export({ format: "der", type: "spki" }),
    ]) {
      const input = `${b64({ ...header, alg: "HS256" })}.${b64(claims)}`;
      const token = `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
      refused(verifyJwt(token, options()), "unsupported_alg");
      refused(
        verifyJwt(token, options({ algorithms: new Set(["HS256" as JwsAlgorithm, "ES256"]) })),
        "unsupported_alg",
      );
    }
  });

  it("refuses RS256 when ES256 is pinned, and an RS256 token against an EC key when both are", () => {
    const rs = forge({ ...header, alg: "RS256" }, claims, rsa.privateKey, "RS256");
    refused(verifyJwt(rs, options()), "unsupported_alg");
    const both = new Set<JwsAlgorithm>(["ES256", "RS256"]);
    refused(verifyJwt(rs, options({ algorithms: both })), "key_mismatch");
    // A key that claims RS256 but is EC: node:crypto's refusal is a bad signature, never a throw.
    refused(
      verifyJwt(rs, options({ algorithms: both, key: () => ({ key: ec.publicKey, algorithms: both }) })),
      "bad_signature",
    );
    const rsaKey: VerificationKey = { key: rsa.publicKey, algorithms: new Set(["RS256"]) };
    expect(verifyJwt(rs, options({ algorithms: both, key: () => rsaKey })).ok).toBe(true);
  });

  it("verifies EdDSA only where pinned and keyed for it", () => {
    const edToken = forge({ ...header, alg: "EdDSA" }, claims, ed.privateKey, "EdDSA");
    const edKey: VerificationKey = { key: ed.publicKey, algorithms: new Set(["EdDSA"]) };
    refused(verifyJwt(edToken, options({ key: () => edKey })), "unsupported_alg");
    expect(verifyJwt(edToken, options({ algorithms: new Set(["EdDSA"]), key: () => edKey })).ok).toBe(true);
  });
});

describe("signatures", () => {
  const flip = (token: string) => {
    const dot = token.lastIndexOf(".");
    const sig = Buffer.from(token.slice(dot + 1), "base64url");
    const s = (N - BigInt(`0x${sig.subarray(32).toString("hex")}`)).toString(16).padStart(64, "0");
    return `${token.slice(0, dot)}.${Buffer.concat([sig.subarray(0, 32), Buffer.from(s, "hex")]).toString("base64url")}`;
  };

  it("signs low-S, accepts the high-S twin as the same token, and maps it back", () => {
    const token = good();
    const high = flip(token);
    expect(lowS(Buffer.from(token.split(".")[2]!, "base64url"))).toBeUndefined();
    expect(verifyJwt(high, options())).toEqual(verifyJwt(token, options()));
    expect(canonicalToken(high)).toBe(token);
    expect(canonicalToken(token)).toBe(token);
  });

  it("refuses DER, wrong-length, all-zero (CVE-2022-21449) and s ≥ n signatures", () => {
    const [h, p, s] = good().split(".") as [string, string, string];
    const der = sign("sha256", Buffer.from(`${h}.${p}`), ec.privateKey).toString("base64url");
    refused(verifyJwt(`${h}.${p}.${der}`, options()), "malformed");
    refused(verifyJwt(`${h}.${p}.${Buffer.alloc(63, 1).toString("base64url")}`, options()), "malformed");
    refused(verifyJwt(`${h}.${p}.`, options()), "malformed");
    refused(verifyJwt(`${h}.${p}.${Buffer.alloc(64).toString("base64url")}`, options()), "bad_signature");
    const huge = Buffer.concat([Buffer.from(s, "base64url").subarray(0, 32), Buffer.alloc(32, 0xff)]);
    refused(verifyJwt(`${h}.${p}.${huge.toString("base64url")}`, options()), "bad_signature");
    expect(canonicalToken(`${h}.${p}.${huge.toString("base64url")}`)).toBe(`${h}.${p}.${huge.toString("base64url")}`);
  });

  it("refuses a tampered payload, and a payload that is signed but not a JSON object", () => {
    const [h, , s] = good().split(".");
    refused(verifyJwt(`${h}.${b64({ ...claims, sub: "admin" })}.${s}`, options()), "bad_signature");
    refused(verifyJwt(forge(header, [1, 2]), options()), "malformed");
    refused(verifyJwt(forge(header, "text"), options()), "malformed");
  });
});

describe("size bounds", () => {
  it("parses a token of exactly the bound and refuses one character more, before decoding anything", () => {
    const [h, , sig] = good().split(".") as [string, string, string];
    const filler = (n: number) => "A".repeat(n - h.length - sig.length - 2);
    const atBound = `${h}.${filler(MAX_TOKEN_CHARS)}.${sig}`;
    expect(atBound).toHaveLength(MAX_TOKEN_CHARS);
    expect(parseCompact(atBound, { algorithms: ES256 }).ok).toBe(true);
    expect(parseCompact(`${h}.${filler(MAX_TOKEN_CHARS + 1)}.${sig}`, { algorithms: ES256 })).toEqual({
      ok: false,
      code: "too_large",
    });
  });

  it("verifies a signed token just under the bound; refuses oversized headers and payloads, even validly signed", () => {
    const big = forge(header, { ...claims, pad: "x".repeat(Math.floor((MAX_TOKEN_CHARS * 3) / 4) - 400) });
    expect(big.length).toBeLessThanOrEqual(MAX_TOKEN_CHARS);
    expect(big.length).toBeGreaterThan(MAX_TOKEN_CHARS - 600);
    expect(verifyJwt(big, options()).ok).toBe(true);
    refused(verifyJwt(forge(header, { ...claims, pad: "x".repeat(MAX_TOKEN_CHARS) }), options()), "too_large");
    refused(verifyJwt(forge({ ...header, pad: "x".repeat(MAX_TOKEN_CHARS) }, claims), options()), "too_large");
  });

  it("takes a caller's own bound", () => {
    const token = good();
    refused(verifyJwt(token, options({ maxTokenChars: token.length - 1 })), "too_large");
    expect(parseCompact(token, { algorithms: ES256, maxTokenChars: token.length }).ok).toBe(true);
  });
});
