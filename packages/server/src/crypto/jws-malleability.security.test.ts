import { generateKeyPairSync, sign } from "node:crypto";
import { base64url } from "@keyward/sdk/jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { canonicalToken, encodeHeader, signCompact, verifyCompact } from "./jws.js";

// ECDSA signatures are malleable: (r, s) and (r, n − s) both verify. A flipped token must be the
// same token to Keyward (same claims, same revocation), never a way around a revocation.
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

function sOf(token: string): bigint {
  const sig = Buffer.from(token.slice(token.lastIndexOf(".") + 1), "base64url");
  return BigInt(`0x${sig.subarray(32).toString("hex")}`);
}

/** The same token with s replaced by n − s: the other valid signature over the same bytes. */
function flip(token: string): string {
  const dot = token.lastIndexOf(".");
  const sig = Buffer.from(token.slice(dot + 1), "base64url");
  const s = (N - sOf(token)).toString(16).padStart(64, "0");
  return `${token.slice(0, dot)}.${Buffer.concat([sig.subarray(0, 32), Buffer.from(s, "hex")]).toString("base64url")}`;
}

describe("ES256 signing and verification (jws.ts)", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const header = encodeHeader("k1", "at+jwt");
  const keys = new Map([["k1", publicKey]]);

  it("signs low-S only (node:crypto alone gives high-S about half the time)", () => {
    for (let i = 0; i < 64; i++) {
      const token = signCompact(header, { i }, privateKey);
      expect(sOf(token) <= N / 2n).toBe(true);
      expect(canonicalToken(token)).toBe(token);
    }
  });

  it("still verifies a high-S token (issued before the upgrade, or by a replica not yet upgraded)", () => {
    // Signed the way earlier versions did: plain node:crypto, until s lands in the high half.
    const legacySign = (i: number) => {
      const input = `${header}.${base64url.encode(JSON.stringify({ i }))}`;
      const sig = sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" });
      return `${input}.${sig.toString("base64url")}`;
    };
    let token = legacySign(0);
    for (let i = 1; sOf(token) <= N / 2n; i++) token = legacySign(i);
    const verified = verifyCompact(token, keys, "at+jwt");
    expect(verified.ok).toBe(true);
    expect(canonicalToken(token)).not.toBe(token);
    expect(sOf(canonicalToken(token)) <= N / 2n).toBe(true);
    expect(verifyCompact(canonicalToken(token), keys, "at+jwt")).toEqual(verified);
  });

  it("gives a token and its flipped copy one canonical form and the same claims", () => {
    const token = signCompact(header, { jti: "j1" }, privateKey);
    const flipped = flip(token);
    expect(flipped).not.toBe(token);
    expect(canonicalToken(flipped)).toBe(token);
    expect(verifyCompact(flipped, keys, "at+jwt")).toEqual(verifyCompact(token, keys, "at+jwt"));
  });

  it("leaves garbage signatures alone (s ≥ n, wrong length) and verification refuses them", () => {
    const token = signCompact(header, { jti: "j2" }, privateKey);
    const dot = token.lastIndexOf(".");
    const sig = Buffer.from(token.slice(dot + 1), "base64url");
    const huge = `${token.slice(0, dot)}.${Buffer.concat([sig.subarray(0, 32), Buffer.alloc(32, 0xff)]).toString("base64url")}`;
    expect(canonicalToken(huge)).toBe(huge);
    expect(verifyCompact(huge, keys, "at+jwt").ok).toBe(false);
    expect(canonicalToken("not.a-token.x")).toBe("not.a-token.x");
  });
});

describe("a flipped access token against a running server", () => {
  let kw: TestServer;
  let key: { id: string; secret: string };

  beforeAll(async () => {
    kw = await startTestServer();
    // Nobody listens upstream: a token that gets through answers 502, not a denial.
    expect((await kw.admin("POST", "/agents", { name: "echo", upstream: "http://127.0.0.1:9" })).status).toBe(201);
    expect((await kw.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
    const r = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"] });
    key = { id: r.body.key.id, secret: r.body.secret };
  });
  afterAll(async () => {
    await kw?.close();
  });

  async function token(): Promise<string> {
    const res = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: key.secret }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { access_token: string }).access_token;
  }

  async function verdict(t: string): Promise<string> {
    const res = await fetch(`${kw.url}/agents/echo/x`, { headers: { authorization: `Bearer ${t}` } });
    return ((await res.json()) as { error: { code: string } }).error.code;
  }

  async function revoke(t: string): Promise<void> {
    const res = await fetch(`${kw.url}/oauth/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: t, client_id: key.id, client_secret: key.secret }),
    });
    expect(res.status).toBe(200);
  }

  it("issues low-S tokens", async () => {
    for (let i = 0; i < 16; i++) expect(sOf(await token()) <= N / 2n).toBe(true);
  });

  it("revoking a token also refuses its flipped copy, even once both were cached", async () => {
    const t = await token();
    const flipped = flip(t);
    expect(await verdict(t)).toBe("upstream_unavailable");
    expect(await verdict(flipped)).toBe("upstream_unavailable"); // the same token: accepted
    await revoke(t);
    expect(await verdict(t)).toBe("invalid_token");
    expect(await verdict(flipped)).toBe("invalid_token");
  });

  it("revoking the flipped copy revokes the original", async () => {
    const t = await token();
    expect(await verdict(t)).toBe("upstream_unavailable");
    await revoke(flip(t));
    expect(await verdict(t)).toBe("invalid_token");
  });
});
