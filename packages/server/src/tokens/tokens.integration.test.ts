import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  type JSONWebKeySet,
  jwtVerify,
} from "jose";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { type SeenRequest, startUpstream } from "../../test-support/upstream.js";
import { type ApiErrorBody, readJson, type TokenEndpointBody } from "../../test-support/wire.js";

let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;

async function key(body: Record<string, unknown> = {}): Promise<{ id: string; secret: string }> {
  const r = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo", "read:docs"], ...body });
  expect(r.status).toBe(201);
  return { id: r.body.key.id, secret: r.body.secret };
}

async function authToken(body: Record<string, unknown>) {
  const res = await fetch(`${kw.url}/v1/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: await readJson<TokenEndpointBody>(res) };
}

async function form(path: string, params: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(`${kw.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;

function gateway(token: string) {
  return fetch(`${kw.url}/agents/echo/hi`, { headers: { authorization: `Bearer ${token}` } });
}

beforeAll(async () => {
  up = await startUpstream();
  kw = await startTestServer();
  expect((await kw.admin("POST", "/agents", { name: "echo", upstream: up.url })).status).toBe(201);
  expect((await kw.admin("POST", "/agents", { name: "other", upstream: up.url })).status).toBe(201);
  expect((await kw.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
});

describe("POST /v1/auth/token (Dify-compatible)", () => {
  it("exchanges a key for an RFC 9068 access token and a refresh token", async () => {
    const k = await key();
    const r = await authToken({ api_key: k.secret });
    expect(r.status).toBe(200);
    expect(r.headers.get("cache-control")).toBe("no-store");
    expect(r.body).toMatchObject({ token_type: "Bearer", expires_in: 3600, scope: "agent:echo read:docs" });
    expect(r.body.refresh_token).toMatch(/^kwr_[0-9A-Za-z]{38}$/);
    const header = decodeProtectedHeader(r.body.access_token);
    expect(header).toMatchObject({ alg: "ES256", typ: "at+jwt" });
    const jwks = await readJson<JSONWebKeySet>(await fetch(`${kw.url}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(r.body.access_token, createLocalJWKSet(jwks), {
      issuer: kw.url,
      audience: kw.url,
      typ: "at+jwt",
      algorithms: ["ES256"],
    });
    expect(payload).toMatchObject({ sub: "consumer:acme", client_id: k.id, scope: "agent:echo read:docs" });
    expect(typeof payload.jti).toBe("string");
    expect((payload.exp as number) - (payload.iat as number)).toBe(3600);
  });

  it("caps the lifetime, narrows the scope and refuses scopes the key lacks", async () => {
    const k = await key();
    const capped = await authToken({ api_key: k.secret, duration_secs: 999_999 });
    expect(capped.body.expires_in).toBe(3600);
    const short = await authToken({ api_key: k.secret, duration_secs: 60, scope: "read:docs" });
    expect(short.body).toMatchObject({ expires_in: 60, scope: "read:docs" });
    const wide = await authToken({ api_key: k.secret, scope: "agent:echo admin:all" });
    expect(wide.status).toBe(400);
    expect(wide.body.error).toBe("invalid_scope");
  });

  it("answers bad keys and bad bodies with RFC 6749 errors", async () => {
    expect((await authToken({ api_key: "kwk_nope" })).body).toMatchObject({ error: "invalid_grant" });
    expect((await authToken({})).body).toMatchObject({ error: "invalid_request" });
    expect((await authToken({ api_key: 42 })).status).toBe(400);
    expect((await authToken({ api_key: (await key()).secret, duration_secs: 0 })).body.error).toBe("invalid_request");
    const k = await key();
    await kw.admin("POST", `/keys/${k.id}/revoke`);
    expect((await authToken({ api_key: k.secret })).body.error).toBe("invalid_grant");
  });
});

describe("access tokens at the gateway", () => {
  it("admits a token like a key, and the upstream gets a Keyward JWT for the same subject", async () => {
    const k = await key();
    const { body } = await authToken({ api_key: k.secret });
    const res = await gateway(body.access_token);
    expect(res.status).toBe(200);
    const seen = await readJson<SeenRequest>(res);
    const forwarded = (seen.headers.authorization as string).slice(7);
    expect(forwarded).not.toBe(body.access_token);
    expect(decodeJwt(forwarded)).toMatchObject({ aud: "echo", sub: "consumer:acme", client_id: k.id });
  });

  it("refuses a token on the next request after its key is revoked or frozen", async () => {
    const k = await key();
    const { body } = await authToken({ api_key: k.secret });
    expect((await gateway(body.access_token)).status).toBe(200);
    await kw.admin("POST", `/keys/${k.id}/freeze`);
    const frozen = await gateway(body.access_token);
    expect(frozen.status).toBe(401);
    expect((await readJson<ApiErrorBody>(frozen)).error.code).toBe("invalid_token");
    await kw.admin("POST", `/keys/${k.id}/unfreeze`);
    expect((await gateway(body.access_token)).status).toBe(200);
    await kw.admin("POST", `/keys/${k.id}/revoke`);
    expect((await gateway(body.access_token)).status).toBe(401);
  });

  it("checks the token's own scopes and audience", async () => {
    const k = await key({ scopes: ["agent:*"] });
    const narrow = await authToken({ api_key: k.secret, scope: "agent:other" });
    const res = await gateway(narrow.body.access_token);
    expect(res.status).toBe(403);
    expect((await readJson<ApiErrorBody>(res)).error.code).toBe("scope_denied");
    const forOther = await authToken({ api_key: k.secret, audience: "other" });
    expect((await gateway(forOther.body.access_token)).status).toBe(401);
    const ok = await fetch(`${kw.url}/agents/other/x`, {
      headers: { authorization: `Bearer ${forOther.body.access_token}` },
    });
    expect(ok.status).toBe(200);
  });

  it("applies the key's rate limit to its tokens", async () => {
    // The mint itself counts too (issue 18 finding 8c): 1 mint + 2 calls fill a limit of 3.
    const k = await key({ rate_limit: { limit: 3, window_s: 3600 } });
    const { body } = await authToken({ api_key: k.secret });
    expect((await gateway(body.access_token)).status).toBe(200);
    expect((await fetch(`${kw.url}/agents/echo/hi`, { headers: { "x-api-key": k.secret } })).status).toBe(200);
    const third = await gateway(body.access_token);
    expect(third.status).toBe(429);
    expect(third.headers.get("ratelimit-remaining")).toBe("0");
  });
});

describe("POST /oauth/token", () => {
  it("client_credentials with HTTP Basic and with body credentials", async () => {
    const k = await key();
    const viaBasic = await form(
      "/oauth/token",
      { grant_type: "client_credentials" },
      { authorization: basic(k.id, k.secret) },
    );
    expect(viaBasic.status).toBe(200);
    expect(viaBasic.body.refresh_token).toBeUndefined();
    expect(decodeJwt(viaBasic.body.access_token).client_id).toBe(k.id);
    const viaBody = await form("/oauth/token", {
      grant_type: "client_credentials",
      client_id: k.id,
      client_secret: k.secret,
      scope: "read:docs",
    });
    expect(viaBody.body.scope).toBe("read:docs");
    const wrongId = await form("/oauth/token", {
      grant_type: "client_credentials",
      client_id: "key_other",
      client_secret: k.secret,
    });
    expect(wrongId.status).toBe(401);
    expect(wrongId.body.error).toBe("invalid_client");
    const badBasic = await form(
      "/oauth/token",
      { grant_type: "client_credentials" },
      { authorization: basic(k.id, "kwk_x") },
    );
    expect(badBasic.status).toBe(401);
    expect(badBasic.headers.get("www-authenticate")).toMatch(/^Basic/);
  });

  it("rotates refresh tokens and revokes the whole family when a used one comes back", async () => {
    const k = await key();
    const first = await authToken({ api_key: k.secret });
    const r1 = await form("/oauth/token", { grant_type: "refresh_token", refresh_token: first.body.refresh_token });
    expect(r1.status).toBe(200);
    expect(r1.body.refresh_token).not.toBe(first.body.refresh_token);
    const r2 = await form("/oauth/token", { grant_type: "refresh_token", refresh_token: r1.body.refresh_token });
    expect(r2.status).toBe(200);
    // The first token again: it leaked. Its whole family dies, including the newest member.
    const replay = await form("/oauth/token", { grant_type: "refresh_token", refresh_token: first.body.refresh_token });
    expect(replay.body.error).toBe("invalid_grant");
    const after = await form("/oauth/token", { grant_type: "refresh_token", refresh_token: r2.body.refresh_token });
    expect(after.body.error).toBe("invalid_grant");
    const audit = await kw.admin("GET", "/audit?action=token.refresh_reuse");
    expect(audit.body.events.length).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(audit.body)).not.toContain(first.body.refresh_token);
  });

  it("refuses refresh for a revoked key and for another client", async () => {
    const k = await key();
    const other = await key();
    const t = await authToken({ api_key: k.secret });
    const foreign = await form(
      "/oauth/token",
      { grant_type: "refresh_token", refresh_token: t.body.refresh_token },
      { authorization: basic(other.id, other.secret) },
    );
    expect(foreign.body.error).toBe("invalid_grant");
    await kw.admin("POST", `/keys/${k.id}/revoke`);
    const revoked = await form("/oauth/token", { grant_type: "refresh_token", refresh_token: t.body.refresh_token });
    expect(revoked.body.error).toBe("invalid_grant");
  });

  it("rejects unknown grant types and malformed bodies with RFC 6749 errors", async () => {
    expect((await form("/oauth/token", { grant_type: "password" })).body.error).toBe("unsupported_grant_type");
    expect((await form("/oauth/token", {})).body.error).toBe("invalid_request");
    const dup = await fetch(`${kw.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials&grant_type=refresh_token",
    });
    expect(dup.status).toBe(400);
    expect((await readJson<TokenEndpointBody>(dup)).error).toBe("invalid_request");
    const xml = await fetch(`${kw.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "text/xml" },
      body: "<a/>",
    });
    expect(xml.status).toBe(400);
    const huge = await fetch(`${kw.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `grant_type=${"x".repeat(2 * 1024 * 1024)}`,
    });
    expect(huge.status).toBe(413);
  });
});

describe("introspection and revocation", () => {
  it("introspects for an agent: active for tokens meant for it, inactive otherwise", async () => {
    const agentKey = await kw.admin("POST", "/keys", { owner: "agent:echo", scopes: [] });
    const auth = basic(agentKey.body.key.id, agentKey.body.secret);
    const k = await key();
    const { body } = await authToken({ api_key: k.secret });
    const active = await form("/oauth/introspect", { token: body.access_token }, { authorization: auth });
    expect(active.status).toBe(200);
    expect(active.body).toMatchObject({ active: true, sub: "consumer:acme", client_id: k.id });
    const bearer = await form(
      "/oauth/introspect",
      { token: body.access_token },
      { authorization: `Bearer ${agentKey.body.secret}` },
    );
    expect(bearer.body.active).toBe(true);
    const narrow = await authToken({ api_key: k.secret, scope: "read:docs" });
    expect(
      (await form("/oauth/introspect", { token: narrow.body.access_token }, { authorization: auth })).body,
    ).toEqual({
      active: false,
    });
    expect((await form("/oauth/introspect", { token: "garbage" }, { authorization: auth })).body).toEqual({
      active: false,
    });
    const anonymous = await form("/oauth/introspect", { token: body.access_token });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error).toBe("invalid_client");
    const consumer = await form(
      "/oauth/introspect",
      { token: body.access_token },
      { authorization: basic(k.id, k.secret) },
    );
    expect(consumer.status).toBe(401);
  });

  it("revokes an access token (refused at the gateway at once) and a refresh token's family", async () => {
    const k = await key();
    const { body } = await authToken({ api_key: k.secret });
    expect((await gateway(body.access_token)).status).toBe(200);
    const r = await form("/oauth/revoke", { token: body.access_token }, { authorization: basic(k.id, k.secret) });
    expect(r.status).toBe(200);
    const refused = await gateway(body.access_token);
    expect(refused.status).toBe(401);
    expect((await readJson<ApiErrorBody>(refused)).error.code).toBe("invalid_token");
    const auth = { authorization: basic(k.id, k.secret) };
    expect((await form("/oauth/revoke", { token: body.refresh_token }, auth)).status).toBe(200);
    const refresh = await form("/oauth/token", { grant_type: "refresh_token", refresh_token: body.refresh_token });
    expect(refresh.body.error).toBe("invalid_grant");
    expect((await form("/oauth/revoke", { token: "kwr_unknown" }, auth)).status).toBe(200);
    expect((await form("/oauth/revoke", { token: "whatever" }, auth)).status).toBe(200);
  });
});

describe("discovery by third-party clients", () => {
  it("serves RFC 8414 metadata at both well-known paths", async () => {
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
      const meta = await readJson<oauth.AuthorizationServer>(await fetch(`${kw.url}${path}`));
      expect(meta).toMatchObject({
        issuer: kw.url,
        token_endpoint: `${kw.url}/oauth/token`,
        jwks_uri: `${kw.url}/.well-known/jwks.json`,
        introspection_endpoint: `${kw.url}/oauth/introspect`,
        revocation_endpoint: `${kw.url}/oauth/revoke`,
      });
      expect(meta.grant_types_supported).toContain("urn:ietf:params:oauth:grant-type:token-exchange");
    }
  });

  it("oauth4webapi discovers Keyward and runs client_credentials unmodified; jose verifies via the remote JWKS", async () => {
    const k = await key();
    const issuer = new URL(kw.url);
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: "oauth2", [oauth.allowInsecureRequests]: true }),
    );
    const client: oauth.Client = { client_id: k.id };
    const response = await oauth.clientCredentialsGrantRequest(
      as,
      client,
      oauth.ClientSecretBasic(k.secret),
      new URLSearchParams({ scope: "agent:echo" }),
      { [oauth.allowInsecureRequests]: true },
    );
    const result = await oauth.processClientCredentialsResponse(as, client, response);
    expect(result.token_type).toBe("bearer");
    const jwks = createRemoteJWKSet(new URL(as.jwks_uri as string));
    const { payload } = await jwtVerify(result.access_token, jwks, {
      issuer: kw.url,
      typ: "at+jwt",
      algorithms: ["ES256"],
    });
    expect(payload.scope).toBe("agent:echo");
    expect((await gateway(result.access_token)).status).toBe(200);
  });
});

describe("signing-key rotation", () => {
  it("signs new tokens with the new key and keeps the old one verifiable", async () => {
    const k = await key();
    const before = await authToken({ api_key: k.secret });
    const oldKid = decodeProtectedHeader(before.body.access_token).kid;
    const rotated = await kw.admin("POST", "/signing-keys/rotate");
    expect(rotated.status).toBe(201);
    expect(rotated.body.active_kid).not.toBe(oldKid);
    const jwks = await readJson<JSONWebKeySet>(await fetch(`${kw.url}/.well-known/jwks.json`));
    expect(jwks.keys.map((x) => x.kid)).toEqual(expect.arrayContaining([oldKid, rotated.body.active_kid]));
    const after = await authToken({ api_key: k.secret });
    expect(decodeProtectedHeader(after.body.access_token).kid).toBe(rotated.body.active_kid);
    expect((await gateway(before.body.access_token)).status).toBe(200);
    expect((await gateway(after.body.access_token)).status).toBe(200);
  });
});
