import { createHmac, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import type { JSONWebKeySet, JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";
import { type ApiErrorBody, readJson, type TokenEndpointBody } from "../../test-support/wire.js";
import { frozenClock } from "../clock.js";
import { createKeyring } from "../crypto/keyring.js";
import { createSigningKeys, type SigningKeys } from "../crypto/signing-keys.js";
import type { Db } from "../store/db.js";
import { openStore } from "../store/open-store.js";
import { type AccessTokens, createAccessTokens } from "./access-tokens.js";

const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
const ISSUER = "https://keyward.test";

describe("access token checks (forged with the real signing key)", () => {
  const clock = frozenClock(Date.UTC(2026, 5, 1));
  let db: Db;
  let signing: SigningKeys;
  let access: AccessTokens;
  const nowS = () => Math.floor(clock.now() / 1000);
  const claims = () => ({
    iss: ISSUER,
    sub: "consumer:acme",
    aud: "echo",
    exp: nowS() + 60,
    iat: nowS(),
    jti: `j-${Math.random()}`,
    client_id: "key_1",
    scope: "agent:echo",
  });

  beforeAll(async () => {
    db = await openStore("sqlite::memory:", "/tmp");
    signing = createSigningKeys({ db, keyring: createKeyring({ active: randomBytes(32) }), clock });
    await signing.init();
    access = createAccessTokens({
      signer: signing,
      issuer: () => ISSUER,
      now: () => clock.now(),
      isRevoked: () => false,
    });
  });
  afterAll(async () => db?.close());

  const code = (token: string) => {
    const r = access.check(token);
    return r.ok ? "ok" : r.code;
  };

  it("accepts a well-formed token and nothing else", () => {
    expect(code(signing.sign(claims()))).toBe("ok");
  });
  it("refuses expired tokens with token_expired and no leeway", () => {
    expect(code(signing.sign({ ...claims(), exp: nowS() }))).toBe("token_expired");
    const t = signing.sign({ ...claims(), exp: nowS() + 1 });
    expect(code(t)).toBe("ok");
    clock.advance(1000);
    expect(code(t)).toBe("token_expired");
  });
  it("refuses not-yet-valid, wrong issuer, missing claims and bad audiences", () => {
    expect(code(signing.sign({ ...claims(), nbf: nowS() + 5 }))).toBe("invalid_token");
    expect(code(signing.sign({ ...claims(), iss: "https://evil.test" }))).toBe("invalid_token");
    expect(code(signing.sign({ ...claims(), jti: undefined }))).toBe("invalid_token");
    expect(code(signing.sign({ ...claims(), client_id: 7 }))).toBe("invalid_token");
    expect(code(signing.sign({ ...claims(), aud: [] }))).toBe("invalid_token");
    expect(code(signing.sign({ ...claims(), aud: [1] }))).toBe("invalid_token");
    expect(code(signing.sign({ ...claims(), act: "agent:w" }))).toBe("invalid_token");
  });
  it("refuses typ JWT and a missing typ (an ID token or another JWT is not an access token)", () => {
    expect(code(signing.sign(claims(), "JWT"))).toBe("invalid_token");
    const [h, p] = signing.sign(claims()).split(".") as [string, string];
    const header = JSON.parse(Buffer.from(h, "base64url").toString());
    delete header.typ;
    expect(code(`${b64(header)}.${p}.AAAA`)).toBe("invalid_token");
  });
  it("refuses a tampered payload", () => {
    const [h, , s] = signing.sign(claims()).split(".") as [string, string, string];
    expect(code(`${h}.${b64({ ...claims(), scope: "agent:*" })}.${s}`)).toBe("invalid_token");
  });
});

describe("gateway and token endpoints under attack", () => {
  let kw: TestServer;
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let good: string;
  let kid: string;
  let jwk: JWK;

  const gateway = (token: string) =>
    fetch(`${kw.url}/agents/echo/x`, { headers: { authorization: `Bearer ${token}` } });
  async function expectInvalidToken(token: string) {
    const res = await gateway(token);
    expect(res.status).toBe(401);
    expect((await readJson<ApiErrorBody>(res)).error.code).toBe("invalid_token");
  }
  const payload = () => {
    const p = JSON.parse(Buffer.from(good.split(".")[1] as string, "base64url").toString());
    return { ...p, scope: "agent:*" };
  };
  const form = async (path: string, params: Record<string, string>, headers: Record<string, string> = {}) => {
    const res = await fetch(`${kw.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(params).toString(),
    });
    return { status: res.status, body: await readJson<TokenEndpointBody>(res).catch(() => undefined) };
  };

  beforeAll(async () => {
    up = await startUpstream();
    kw = await startTestServer();
    await kw.admin("POST", "/agents", { name: "echo", upstream: up.url });
    await kw.admin("POST", "/consumers", { name: "acme" });
    const k = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"] });
    const t = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: k.body.secret }),
    });
    good = (await readJson<TokenEndpointBody>(t)).access_token;
    expect((await gateway(good)).status).toBe(200);
    kid = JSON.parse(Buffer.from(good.split(".")[0] as string, "base64url").toString()).kid;
    jwk = (await readJson<JSONWebKeySet>(await fetch(`${kw.url}/.well-known/jwks.json`))).keys[0]!;
  });
  afterAll(async () => {
    await kw?.close();
    await up?.close();
  });

  it("alg none", async () => {
    await expectInvalidToken(`${b64({ alg: "none", typ: "at+jwt", kid })}.${b64(payload())}.`);
    await expectInvalidToken(`${b64({ alg: "none", typ: "at+jwt", kid })}.${b64(payload())}`);
  });

  it("HS256 signed with the public key as the secret (algorithm confusion)", async () => {
    for (const secret of [JSON.stringify(jwk), Buffer.from(jwk.x as string, "base64url"), `${jwk.x}${jwk.y}`]) {
      const input = `${b64({ alg: "HS256", typ: "at+jwt", kid })}.${b64(payload())}`;
      const mac = createHmac("sha256", secret).update(input).digest("base64url");
      await expectInvalidToken(`${input}.${mac}`);
    }
  });

  it("unknown and path-like kids, and keys named by jku/x5u/jwk/x5c", async () => {
    const attacker = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const forge = (header: Record<string, unknown>) => {
      const input = `${b64({ alg: "ES256", typ: "at+jwt", ...header })}.${b64(payload())}`;
      const sig = sign("sha256", Buffer.from(input), { key: attacker.privateKey, dsaEncoding: "ieee-p1363" });
      return `${input}.${sig.toString("base64url")}`;
    };
    await expectInvalidToken(forge({ kid: "not-a-kid" }));
    await expectInvalidToken(forge({ kid: "../../../etc/passwd" }));
    await expectInvalidToken(forge({ kid: "http://127.0.0.1:1/jwks.json" }));
    await expectInvalidToken(forge({ kid, jku: "http://127.0.0.1:1/jwks.json" }));
    await expectInvalidToken(forge({ kid, x5u: "http://127.0.0.1:1/cert.pem" }));
    await expectInvalidToken(forge({ kid, x5c: ["MIIB"] }));
    await expectInvalidToken(forge({ kid, jwk: attacker.publicKey.export({ format: "jwk" }) }));
    await expectInvalidToken(forge({ kid, crit: ["exp"] }));
    await expectInvalidToken(forge({ kid }));
  });

  it("a tampered payload, garbage, huge tokens, refresh tokens and keys in the wrong place", async () => {
    const [h, , s] = good.split(".") as [string, string, string];
    await expectInvalidToken(`${h}.${b64(payload())}.${s}`);
    await expectInvalidToken("a.b.c");
    await expectInvalidToken("not-a-jwt");
    await expectInvalidToken(`${h}.${"A".repeat(12_000)}.${s}`);
    await expectInvalidToken(`kwr_${"a".repeat(38)}`);
    const refresh = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        api_key: (await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"] })).body.secret,
      }),
    });
    await expectInvalidToken((await readJson<TokenEndpointBody>(refresh)).refresh_token);
    // An access token presented as a refresh token is not a grant either.
    expect((await form("/oauth/token", { grant_type: "refresh_token", refresh_token: good })).body?.error).toBe(
      "invalid_grant",
    );
  });

  it("introspection without client authentication, or with a non-agent key, is refused", async () => {
    expect((await form("/oauth/introspect", { token: good })).status).toBe(401);
    expect((await form("/oauth/introspect", { token: good }, { authorization: "Bearer kwk_nope" })).status).toBe(401);
    expect((await form("/oauth/introspect", { token: good }, { authorization: `Bearer ${good}` })).status).toBe(401);
    expect((await form("/oauth/introspect", { token: good }, { authorization: "Basic !!!" })).status).toBe(401);
  });

  it("malformed bodies and grant types get RFC 6749 errors, never a 500", async () => {
    const cases: Array<[string, string, string]> = [
      ["application/x-www-form-urlencoded", "grant_type=", "invalid_request"],
      ["application/x-www-form-urlencoded", "grant_type=implicit", "unsupported_grant_type"],
      ["application/x-www-form-urlencoded", "grant_type=%E0%A4%A", "unsupported_grant_type"],
      ["application/x-www-form-urlencoded", "grant_type=client_credentials%00", "invalid_request"],
      ["application/json", "{", "invalid_request"],
      ["application/json", "[1,2]", "invalid_request"],
      ["application/json", '{"grant_type":["client_credentials"]}', "invalid_request"],
      ["application/x-www-form-urlencoded", "grant_type=client_credentials", "invalid_client"],
      ["application/x-www-form-urlencoded", "grant_type=client_credentials&client_secret=x", "invalid_request"],
      ["application/x-www-form-urlencoded", "grant_type=refresh_token", "invalid_request"],
      ["application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=kwr_x", "invalid_grant"],
      ["application/x-www-form-urlencoded", "grant_type=client_credentials&scope=%22bad%22", "invalid_scope"],
      ["text/plain", "grant_type=client_credentials", "invalid_request"],
    ];
    for (const [type, body, error] of cases) {
      const res = await fetch(`${kw.url}/oauth/token`, { method: "POST", headers: { "content-type": type }, body });
      expect(res.status, `${type} ${body}`).toBeLessThan(500);
      expect((await readJson<TokenEndpointBody>(res)).error, `${type} ${body}`).toBe(error);
    }
    for (const path of ["/oauth/introspect", "/oauth/revoke", "/v1/auth/token"]) {
      const res = await fetch(`${kw.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{x",
      });
      expect(res.status).toBeLessThan(500);
    }
    expect((await fetch(`${kw.url}/oauth/token`)).status).toBe(405);
  });
});
