import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";

/**
 * Issue 18, finding 8 (b, d): who may revoke what at /oauth/revoke (RFC 7009 §2.1), the upstream
 * JWT cache after its token is revoked, duplicate JSON parameters, and a refresh naming another
 * client_id without its secret.
 */
let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;

async function key(owner = "consumer:acme"): Promise<{ id: string; secret: string }> {
  const r = await kw.admin("POST", "/keys", { owner, scopes: ["agent:echo"] });
  expect(r.status).toBe(201);
  return { id: r.body.key.id, secret: r.body.secret };
}

async function post(path: string, body: string, headers: Record<string, string>) {
  const res = await fetch(`${kw.url}${path}`, { method: "POST", headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

const form = (path: string, params: Record<string, string>, headers: Record<string, string> = {}) =>
  post(path, new URLSearchParams(params).toString(), {
    "content-type": "application/x-www-form-urlencoded",
    ...headers,
  });

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;

async function tokens(apiKey: string): Promise<{ access_token: string; refresh_token: string }> {
  const r = await post("/v1/auth/token", JSON.stringify({ api_key: apiKey }), { "content-type": "application/json" });
  expect(r.status).toBe(200);
  return r.body;
}

async function gatewayStatus(credential: string): Promise<number> {
  const res = await fetch(`${kw.url}/agents/echo/x`, { headers: { authorization: `Bearer ${credential}` } });
  await res.arrayBuffer();
  return res.status;
}

beforeAll(async () => {
  up = await startUpstream();
  kw = await startTestServer();
  expect((await kw.admin("POST", "/agents", { name: "echo", upstream: up.url })).status).toBe(201);
  expect((await kw.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
  expect((await kw.admin("POST", "/consumers", { name: "other" })).status).toBe(201);
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
});

describe("/oauth/revoke authenticates the client (RFC 7009 §2.1)", () => {
  it("answers a request without any client authentication 401 invalid_client, revoking nothing", async () => {
    const k = await key();
    const t = await tokens(k.secret);
    for (const token of [t.access_token, t.refresh_token]) {
      const r = await form("/oauth/revoke", { token });
      expect(r.status).toBe(401);
      expect(r.body.error).toBe("invalid_client");
    }
    expect(await gatewayStatus(t.access_token)).toBe(200);
    const refreshed = await form("/oauth/token", { grant_type: "refresh_token", refresh_token: t.refresh_token });
    expect(refreshed.status).toBe(200);
  });

  it("lets another client revoke nothing, answering 200 as for an unknown token", async () => {
    const mine = await key();
    const stranger = await key("consumer:other");
    const t = await tokens(mine.secret);
    for (const token of [t.access_token, t.refresh_token]) {
      expect(
        (await form("/oauth/revoke", { token }, { authorization: basic(stranger.id, stranger.secret) })).status,
      ).toBe(200);
    }
    expect(await gatewayStatus(t.access_token)).toBe(200);
    expect((await form("/oauth/token", { grant_type: "refresh_token", refresh_token: t.refresh_token })).status).toBe(
      200,
    );
  });

  it("lets the key the tokens were issued to revoke them, by Basic or in the body", async () => {
    const k = await key();
    const t = await tokens(k.secret);
    const byBody = await form("/oauth/revoke", { token: t.access_token, client_id: k.id, client_secret: k.secret });
    expect(byBody.status).toBe(200);
    expect(await gatewayStatus(t.access_token)).toBe(401);
    const byBasic = await form("/oauth/revoke", { token: t.refresh_token }, { authorization: basic(k.id, k.secret) });
    expect(byBasic.status).toBe(200);
    const refreshed = await form("/oauth/token", { grant_type: "refresh_token", refresh_token: t.refresh_token });
    expect(refreshed.body.error).toBe("invalid_grant");
    // Unknown or malformed tokens: still 200 to an authenticated client.
    for (const token of ["kwr_unknown", "whatever"]) {
      expect((await form("/oauth/revoke", { token }, { authorization: basic(k.id, k.secret) })).status).toBe(200);
    }
  });

  it("lets the holder revoke an access token by presenting it, but not a refresh token", async () => {
    const k = await key();
    const t = await tokens(k.secret);
    const other = await tokens(k.secret);
    // Presenting one token does not revoke another.
    expect(
      (await form("/oauth/revoke", { token: other.access_token }, { authorization: `Bearer ${t.access_token}` }))
        .status,
    ).toBe(401);
    expect(await gatewayStatus(other.access_token)).toBe(200);
    const self = await form("/oauth/revoke", { token: t.access_token }, { authorization: `Bearer ${t.access_token}` });
    expect(self.status).toBe(200);
    expect(await gatewayStatus(t.access_token)).toBe(401);
    const refresh = await form(
      "/oauth/revoke",
      { token: t.refresh_token },
      { authorization: `Bearer ${t.refresh_token}` },
    );
    expect(refresh.status).toBe(200);
    expect((await form("/oauth/token", { grant_type: "refresh_token", refresh_token: t.refresh_token })).status).toBe(
      200,
    );
  });
});

describe("the upstream JWT cache after /oauth/revoke", () => {
  it("stops forwarding an upstream JWT once that JWT itself is revoked", async () => {
    const k = await key();
    const forwarded = async (): Promise<string> => {
      expect(await gatewayStatus(k.secret)).toBe(200);
      const auth = up.seen[up.seen.length - 1]?.headers.authorization;
      expect(auth).toMatch(/^Bearer /);
      return (auth as string).slice("Bearer ".length);
    };
    const first = await forwarded();
    expect(await forwarded()).toBe(first); // reused from the cache
    const r = await form("/oauth/revoke", { token: first }, { authorization: basic(k.id, k.secret) });
    expect(r.status).toBe(200);
    const after = await forwarded();
    expect(after).not.toBe(first);
    // The revoked one is refused where Keyward judges tokens; the new one is not.
    const introspectorKey = await kw.admin("POST", "/keys", { owner: "agent:echo", scopes: [] });
    const introspect = async (token: string) =>
      (await form("/oauth/introspect", { token }, { authorization: `Bearer ${introspectorKey.body.secret}` })).body;
    expect(await introspect(first)).toEqual({ active: false });
    expect((await introspect(after)).active).toBe(true);
  });
});

describe("OAuth parameters", () => {
  it("refuses a JSON body naming a parameter twice, as a form body is refused", async () => {
    const k = await key();
    const bodies = [
      `{"grant_type":"client_credentials","client_id":"${k.id}","client_secret":"${k.secret}","scope":"agent:echo","scope":"x"}`,
      `{"grant_type":"client_credentials","client_id":"${k.id}","client_secret":"${k.secret}","client_id":"${k.id}"}`,
      // The same name spelt with an escape is the same parameter.
      `{"grant_type":"client_credentials","client_id":"${k.id}","client_secret":"${k.secret}","grant\\u005ftype":"client_credentials"}`,
    ];
    for (const body of bodies) {
      const r = await post("/oauth/token", body, { "content-type": "application/json" });
      expect(r.status, body).toBe(400);
      expect(r.body.error).toBe("invalid_request");
      expect(r.body.error_description).toMatch(/given more than once$/);
      expect(r.body.error_description).not.toContain(k.secret);
    }
    // Nested values are no parameters, and a duplicate inside them is no duplicate parameter.
    const nested = `{"grant_type":"client_credentials","client_id":"${k.id}","client_secret":"${k.secret}","x":"{\\"a\\":1,\\"a\\":2}"}`;
    expect((await post("/oauth/token", nested, { "content-type": "application/json" })).status).toBe(200);
  });

  it("refuses a refresh naming another client_id without its secret, and accepts the token's own", async () => {
    const mine = await key();
    const other = await key();
    const t = await tokens(mine.secret);
    const wrong = await form("/oauth/token", {
      grant_type: "refresh_token",
      refresh_token: t.refresh_token,
      client_id: other.id,
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toBe("invalid_grant");
    const right = await form("/oauth/token", {
      grant_type: "refresh_token",
      refresh_token: t.refresh_token,
      client_id: mine.id,
    });
    expect(right.status).toBe(200);
  });
});
