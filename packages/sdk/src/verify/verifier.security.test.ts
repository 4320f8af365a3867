import { createHmac, randomBytes } from "node:crypto";
import { exportSPKI, importJWK, SignJWT } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AUDIENCE,
  craftToken,
  newKey,
  startIssuer,
  type TestIssuer,
  type TestKey,
  validClaims,
} from "../../test-support/verify/issuer.js";
import { JwksUnavailableError, TokenVerificationError } from "./errors.js";
import { type Verifier, verifier } from "./verifier.js";

let issuer: TestIssuer;
let key: TestKey;
let v: Verifier;
beforeAll(async () => {
  issuer = await startIssuer();
  key = issuer.keys[0]!;
});
afterAll(() => issuer.close());
beforeEach(async () => {
  v = verifier({ issuer: issuer.url, audience: AUDIENCE });
  await v.refresh();
});

const header = (extra: Record<string, unknown> = {}) => ({ alg: "ES256", typ: "at+jwt", kid: key.kid, ...extra });

/** The refusal, checked to be a TokenVerificationError whose message holds no part of the token. */
async function refusal(token: unknown, using: Verifier = v): Promise<TokenVerificationError> {
  const err = await using.verify(token as string).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the token was accepted").toBeInstanceOf(TokenVerificationError);
  const e = err as TokenVerificationError;
  if (typeof token === "string" && token.length > 0) {
    const text = `${e.message}\n${String(e.stack)}\n${JSON.stringify(e)}`;
    for (const part of token.split(".").filter((p) => p.length >= 8)) expect(text).not.toContain(part);
  }
  return e;
}

describe("algorithm confusion", () => {
  it("refuses alg none, with or without a signature", async () => {
    const payload = validClaims(issuer.url);
    expect((await refusal(craftToken(header({ alg: "none" }), payload, { signature: "" }))).code).toBe("invalid_token");
    expect((await refusal(craftToken(header({ alg: "none" }), payload, { signature: "AAAA" }))).code).toBe(
      "invalid_token",
    );
    expect((await refusal(craftToken(header({ alg: "NONE" }), payload, { key }))).code).toBe("invalid_token");
  });

  it("refuses HS256 tokens keyed with the public key's bytes, PEM or JWK", async () => {
    const pem = await exportSPKI(await importPublic(key));
    const secrets = [
      Buffer.from(pem),
      Buffer.from(JSON.stringify(key.publicJwk)),
      Buffer.from(key.publicJwk.x!, "base64url"),
      Buffer.concat([
        Buffer.from([4]),
        Buffer.from(key.publicJwk.x!, "base64url"),
        Buffer.from(key.publicJwk.y!, "base64url"),
      ]),
    ];
    for (const secret of secrets) {
      const viaJose = await new SignJWT(validClaims(issuer.url))
        .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: key.kid })
        .sign(secret);
      expect((await refusal(viaJose)).code).toBe("invalid_token");
    }
    // HS256 with a 64-byte MAC would even pass a signature-length check: the alg pin must stop it.
    const h = Buffer.from(JSON.stringify(header({ alg: "HS512" }))).toString("base64url");
    const p = Buffer.from(JSON.stringify(validClaims(issuer.url))).toString("base64url");
    const mac = createHmac("sha512", Buffer.from(pem)).update(`${h}.${p}`).digest("base64url");
    expect((await refusal(`${h}.${p}.${mac}`)).code).toBe("invalid_token");
  });

  it("refuses an ES256 key's token relabelled EdDSA, even when EdDSA is allowed", async () => {
    const both = verifier({ issuer: issuer.url, audience: AUDIENCE, algorithms: ["ES256", "EdDSA"] });
    const token = craftToken(header({ alg: "EdDSA" }), validClaims(issuer.url), { key });
    expect((await refusal(token, both)).code).toBe("invalid_token");
  });

  it("refuses other ECDSA and RSA algorithm names", async () => {
    for (const alg of ["ES384", "ES512", "RS256", "PS256", "es256", "ES256K"]) {
      expect((await refusal(craftToken(header({ alg }), validClaims(issuer.url), { key }))).code).toBe("invalid_token");
    }
  });
});

describe("key selection", () => {
  it("refuses an unknown kid, and a kid that looks like a path or a URL, without fetching it", async () => {
    const before = issuer.fetches;
    const kids = [
      "../../etc/passwd",
      "http://127.0.0.1:1/jwks.json",
      `${issuer.url}/.well-known/jwks.json`,
      "/dev/zero",
      "__proto__",
      "constructor",
      "",
    ];
    for (const kid of kids) {
      expect((await refusal(craftToken(header({ kid }), validClaims(issuer.url), { key }))).code).toBe("invalid_token");
    }
    expect((await refusal(craftToken(header({ kid: undefined }), validClaims(issuer.url), { key }))).code).toBe(
      "invalid_token",
    );
    expect((await refusal(craftToken(header({ kid: 42 }), validClaims(issuer.url), { key }))).code).toBe(
      "invalid_token",
    );
    // A well-formed unknown kid may cost one refetch of the configured JWKS URI, never more.
    expect((await refusal(craftToken(header({ kid: "unknown-kid" }), validClaims(issuer.url), { key }))).code).toBe(
      "invalid_token",
    );
    expect(issuer.fetches - before).toBeLessThanOrEqual(1);
  });

  it("refuses tokens carrying jku, x5u, jwk, x5c or crit headers, even when signed by a published key", async () => {
    const attacker = await newKey();
    const cases: Record<string, unknown>[] = [
      { jku: `${issuer.url}/.well-known/jwks.json` },
      { jku: "http://attacker.example/jwks.json" },
      { x5u: "http://attacker.example/cert.pem" },
      { x5c: ["MIIBszCCAVmgAwIBAgIU"] },
      { jwk: key.publicJwk },
      { crit: ["exp"] },
      { crit: [] },
    ];
    for (const extra of cases) {
      const token = craftToken(header(extra), validClaims(issuer.url), { key });
      expect((await refusal(token)).code).toBe("invalid_token");
    }
    // A token signed by the attacker's key, embedding that key, under our kid or none.
    for (const kid of [key.kid, attacker.kid]) {
      const token = craftToken(header({ kid, jwk: attacker.publicJwk }), validClaims(issuer.url), { key: attacker });
      expect((await refusal(token)).code).toBe("invalid_token");
    }
  });

  it("refuses a token signed by a key the issuer does not publish", async () => {
    const attacker = await newKey();
    const token = craftToken(header(), validClaims(issuer.url), { key: attacker });
    expect((await refusal(token)).code).toBe("invalid_token");
  });

  it("ignores JWKS entries for another use, another algorithm, or a private key's secret half", async () => {
    const jwks = (keys: unknown[]) => async () => new Response(JSON.stringify({ keys }), { status: 200 });
    const token = await issuer.token();
    for (const entry of [
      { ...key.publicJwk, use: "enc" },
      { ...key.publicJwk, alg: "ES384" },
      { ...key.publicJwk, crv: "P-384" },
      { ...key.publicJwk, kty: "RSA" },
      { ...key.publicJwk, x: "AAAA" },
      { ...key.publicJwk, kid: undefined },
    ]) {
      const with1 = verifier({ issuer: issuer.url, audience: AUDIENCE, fetch: jwks([entry]) });
      expect((await refusal(token, with1)).code).toBe("invalid_token");
    }
    const good = verifier({
      issuer: issuer.url,
      audience: AUDIENCE,
      fetch: jwks([{ ...key.publicJwk, use: undefined }]),
    });
    await expect(good.verify(token)).resolves.toBeTruthy();
  });
});

describe("claims", () => {
  const nowS = () => Math.floor(Date.now() / 1000);

  it("refuses a tampered payload", async () => {
    const token = await issuer.token({ scope: "agent:research" });
    const [h, , s] = token.split(".");
    const forged = Buffer.from(JSON.stringify({ ...validClaims(issuer.url), scope: "agent:* admin" })).toString(
      "base64url",
    );
    expect((await refusal(`${h}.${forged}.${s}`)).code).toBe("invalid_token");
    // One flipped bit in the signature.
    const sig = Buffer.from(s!, "base64url");
    sig[10] = (sig[10] ?? 0) ^ 1;
    expect((await refusal(`${h}.${token.split(".")[1]}.${sig.toString("base64url")}`)).code).toBe("invalid_token");
  });

  it("refuses expired and not-yet-valid tokens", async () => {
    expect((await refusal(await issuer.token({ iat: nowS() - 600, exp: nowS() - 60 }))).code).toBe("token_expired");
    expect((await refusal(await issuer.token({ nbf: nowS() + 600 }))).code).toBe("invalid_token");
    expect((await refusal(await issuer.token({ iat: nowS() + 600, exp: nowS() + 900 }))).code).toBe("invalid_token");
  });

  it("refuses another issuer, exactly compared", async () => {
    for (const iss of ["https://evil.example", `${issuer.url}/`, issuer.url.toUpperCase(), undefined, 42]) {
      expect((await refusal(await issuer.token({ iss }))).code).toBe("invalid_token");
    }
  });

  it("refuses another audience", async () => {
    for (const aud of ["tools", ["tools", "billing"], [], undefined, "Research", [42], { research: true }]) {
      expect((await refusal(await issuer.token({ aud }))).code).toBe("invalid_token");
    }
  });

  it("refuses typ JWT, a missing typ, and other types", async () => {
    for (const typ of ["JWT", undefined, "at+jwt; charset=x", "application/jwt", "dpop+jwt", 1]) {
      expect((await refusal(await issuer.token({}, { typ }))).code).toBe("invalid_token");
    }
  });

  it("refuses tokens missing a required claim or with claims of the wrong type", async () => {
    for (const claims of [
      { exp: undefined },
      { exp: "9999999999" },
      { exp: null },
      { iat: undefined },
      { sub: undefined },
      { sub: "" },
      { jti: undefined },
      { client_id: undefined },
      { scope: ["agent:research"] },
      { nbf: "0" },
      { act: "agent:workflow" },
      { act: { act: { sub: "agent:x" } } },
    ]) {
      expect((await refusal(await issuer.token(claims))).code).toBe("invalid_token");
    }
  });

  it("refuses an act chain nested beyond reason", async () => {
    let act: Record<string, unknown> = { sub: "agent:0" };
    for (let i = 1; i < 40; i++) act = { sub: `agent:${i}`, act };
    expect((await refusal(await issuer.token({ act }))).code).toBe("invalid_token");
  });
});

describe("things that are not access tokens", () => {
  const base62 = (n: number) =>
    Array.from(randomBytes(n), (b) => "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[b % 62]).join(
      "",
    );

  it("refuses a refresh token, an API key or an admin token, saying what it is without echoing it", async () => {
    for (const prefix of ["kwr_", "kwk_", "kwa_"]) {
      const e = await refusal(`${prefix}${base62(38)}`);
      expect(e.code).toBe("invalid_token");
      expect(e.message).toMatch(/not an access token/);
      expect(e.message).not.toContain(prefix);
    }
  });

  it("refuses garbage, huge and malformed tokens with an error, never a crash", async () => {
    const h = Buffer.from(JSON.stringify(header())).toString("base64url");
    const p = Buffer.from(JSON.stringify(validClaims(issuer.url))).toString("base64url");
    const s = Buffer.alloc(64, 1).toString("base64url");
    const inputs: unknown[] = [
      "",
      " ",
      "garbage",
      "a.b",
      "a.b.c",
      "..",
      `${h}.${p}`,
      `${h}.${p}.${s}.extra`,
      `${h}.${p}.${s}.x.y`, // JWE-shaped
      `${h}..${s}`,
      `.${p}.${s}`,
      `${h}.${p}.`,
      `${h}.${p}.${s}=`,
      `${h}.${p}.${s.slice(0, -1)}`,
      `${h}.${p}.${Buffer.alloc(65, 1).toString("base64url")}`,
      `${h}.${p}.${s.slice(0, -1)}B`, // non-canonical trailing bits
      `${h}.${p}.${"A".repeat(85)}`,
      `${h} .${p}.${s}`,
      `${h}.${p}.${s}\n`,
      `${Buffer.from("not json").toString("base64url")}.${p}.${s}`,
      `${Buffer.from("[1,2]").toString("base64url")}.${p}.${s}`,
      `${Buffer.from("null").toString("base64url")}.${p}.${s}`,
      `${Buffer.from([0xff, 0xfe, 0x7b]).toString("base64url")}.${p}.${s}`,
      `${h}.${Buffer.from("not json").toString("base64url")}.${s}`,
      `${h}.${p}.${s}`.repeat(1000),
      "x".repeat(10_000_000),
      `${h}.${"A".repeat(20_000)}.${s}`,
      undefined,
      null,
      42,
      {},
      ["a", "b", "c"],
    ];
    for (const input of inputs) {
      expect((await refusal(input)).code).toBe("invalid_token");
    }
  });

  it("refuses a payload that is not JSON even when properly signed", async () => {
    for (const payload of ["not json", "[1,2,3]", '"string"', "", "{"]) {
      expect((await refusal(craftToken(header(), payload, { key }))).code).toBe("invalid_token");
    }
  });
});

describe("what a refusal says", () => {
  it("never includes the token in messages or error serialisations", async () => {
    const expired = await issuer.token({ iat: 1, exp: 2 });
    const e = await refusal(expired);
    expect(e.code).toBe("token_expired");
    expect(JSON.stringify({ ...e, message: e.message })).not.toContain(expired.split(".")[1]);
  });

  it("reports an issuer outage as JwksUnavailableError, naming no token", async () => {
    const down = verifier({ issuer: "http://127.0.0.1:9", audience: AUDIENCE });
    const token = await issuer.token();
    const err = await down.verify(token).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JwksUnavailableError);
    expect(String((err as Error).message)).not.toContain(token.split(".")[1]);
  });
});

async function importPublic(k: TestKey) {
  return (await importJWK(k.publicJwk, "ES256")) as Parameters<typeof exportSPKI>[0];
}
