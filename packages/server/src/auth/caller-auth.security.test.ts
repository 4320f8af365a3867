import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { openSse } from "../../test-support/sse-client.js";
import { type SeenRequest, startUpstream } from "../../test-support/upstream.js";
import { readJson, type TokenEndpointBody } from "../../test-support/wire.js";

/**
 * Issue 11, finding 1: a token is accepted only where its audience is. Agent alpha calls agent
 * beta through the gateway; beta receives a JWT with sub = agent:alpha, aud = beta. Replayed by
 * beta at Keyward, it must not act as alpha anywhere.
 */
const TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ALPHA_SECRET = "alpha-read-secret-canary-5b1f0c";

let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;
let alphaKey: string;
let betaKey: string;
/** The JWT beta received when alpha called it. */
let forwarded: string;

const call = async (method: string, path: string, bearer: string, body?: unknown) => {
  const res = await fetch(`${kw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: each test asserts the shape it needs
  return { status: res.status, text, body: text ? (JSON.parse(text) as Record<string, any>) : {} };
};

const form = async (path: string, params: Record<string, string>, headers: Record<string, string> = {}) => {
  const res = await fetch(`${kw.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(params).toString(),
  });
  // biome-ignore lint/suspicious/noExplicitAny: each test asserts the shape it needs
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

beforeAll(async () => {
  up = await startUpstream();
  kw = await startTestServer();
  for (const name of ["alpha", "beta", "gamma"]) {
    expect((await kw.admin("POST", "/agents", { name, upstream: up.url })).status).toBe(201);
  }
  alphaKey = (await kw.admin("POST", "/keys", { owner: "agent:alpha", scopes: ["agent:beta"] })).body.secret;
  betaKey = (await kw.admin("POST", "/keys", { owner: "agent:beta", scopes: [] })).body.secret;
  expect((await kw.admin("PUT", "/credentials/alpha_read", { value: ALPHA_SECRET })).status).toBe(201);
  const inject = await kw.admin("PUT", "/credentials/alpha_inject", {
    value: "alpha-inject-secret",
    egress: { base_url: up.url },
  });
  expect(inject.status).toBe(201);
  const grants = await kw.admin("PUT", "/agents/alpha/grants", {
    credentials: [
      { name: "alpha_read", mode: "read" },
      { name: "alpha_inject", mode: "inject" },
    ],
    may_call: ["beta"],
  });
  expect(grants.status).toBe(200);
  expect((await kw.admin("PUT", "/agents/beta/grants", { credentials: [], may_call: ["gamma"] })).status).toBe(200);
  const res = await fetch(`${kw.url}/agents/beta/echo`, { headers: { authorization: `Bearer ${alphaKey}` } });
  expect(res.status).toBe(200);
  forwarded = ((await readJson<SeenRequest>(res)).headers.authorization as string).slice("Bearer ".length);
  expect(decodeJwt(forwarded)).toMatchObject({ sub: "agent:alpha", aud: "beta" });
});

afterAll(async () => {
  await kw?.close();
  await up?.close();
});

describe("a JWT forwarded to agent beta does not act as its caller alpha at Keyward", () => {
  it("alpha's own key reads alpha's credentials (control)", async () => {
    const r = await call("GET", "/v1/credentials", alphaKey);
    expect(r.status).toBe(200);
    expect(r.body.credentials.alpha_read.value).toBe(ALPHA_SECRET);
  });

  it("GET /v1/credentials refuses it", async () => {
    const r = await call("GET", "/v1/credentials", forwarded);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("invalid_token");
    expect(r.text).not.toContain(ALPHA_SECRET);
  });

  it("GET /v1/credentials/events refuses it", async () => {
    const r = await call("GET", "/v1/credentials/events", forwarded);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("invalid_token");
  });

  it("egress refuses it: beta cannot use alpha's inject-only secret", async () => {
    const before = up.seen.length;
    const r = await call("GET", "/egress/alpha_inject/echo", forwarded);
    expect(r.status).toBe(401);
    expect(up.seen.length).toBe(before);
  });

  it("POST /v1/audit/events and /v1/tools/credentials refuse it as the caller", async () => {
    const audit = await call("POST", "/v1/audit/events", forwarded, {
      tool: "t",
      user: "user:u",
      outcome: "ok",
      redactions: 0,
    });
    expect(audit.status).toBe(401);
    const tools = await call("POST", "/v1/tools/credentials", forwarded, { user_token: forwarded, names: ["x"] });
    expect(tools.status).toBe(401);
    const events = await kw.admin("GET", "/audit?action=tool.call");
    expect(events.body.events ?? []).toEqual([]);
  });

  it("it is refused as an actor token: beta cannot act as alpha in a delegation", async () => {
    const subject = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: alphaKey }),
    });
    const alphaToken = (await readJson<TokenEndpointBody>(subject)).access_token;
    const r = await form("/oauth/token", {
      grant_type: EXCHANGE,
      subject_token: alphaToken,
      subject_token_type: TOKEN_TYPE,
      actor_token: forwarded,
      actor_token_type: TOKEN_TYPE,
      audience: "beta",
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe("invalid_grant");
  });

  it("the gateway accepts it only for beta, never for another agent", async () => {
    const r = await call("GET", "/agents/alpha/echo", forwarded);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("invalid_token");
  });

  it("beta can still pass it on as the subject with itself as actor (delegation)", async () => {
    const r = await form("/oauth/token", {
      grant_type: EXCHANGE,
      subject_token: forwarded,
      subject_token_type: TOKEN_TYPE,
      actor_token: betaKey,
      actor_token_type: TOKEN_TYPE,
      audience: "gamma",
    });
    // alpha's scopes do not include agent:gamma: refused for that reason, not for the audience.
    expect(r.body.error).toBe("invalid_target");
    expect(r.body.error_description).toContain("agent:gamma");
  });

  it("a token minted for Keyward (aud = issuer) works at Keyward's endpoints (control)", async () => {
    const res = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: alphaKey }),
    });
    const token = (await readJson<TokenEndpointBody>(res)).access_token;
    expect((await call("GET", "/v1/credentials", token)).status).toBe(200);
  });

  it("a token minted with an agent as audience is refused at Keyward's endpoints", async () => {
    const res = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: alphaKey, audience: "beta" }),
    });
    const token = (await readJson<TokenEndpointBody>(res)).access_token;
    expect((await call("GET", "/v1/credentials", token)).status).toBe(401);
  });
});

describe("issue 11, finding 11: an audience must name an existing agent", () => {
  it("/v1/auth/token refuses an unknown audience", async () => {
    const res = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: alphaKey, audience: "nobody" }),
    });
    expect(res.status).toBe(400);
    expect((await readJson<TokenEndpointBody>(res)).error).toBe("invalid_target");
  });

  it("client_credentials refuses an unknown audience", async () => {
    const id = decodeJwt(forwarded).client_id as string;
    const r = await form("/oauth/token", {
      grant_type: "client_credentials",
      client_id: id,
      client_secret: alphaKey,
      audience: "nobody",
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe("invalid_target");
  });
});

describe("issue 11, finding 7: streams end with their credential", () => {
  it("a stream opened with a token ends when the token is revoked at /oauth/revoke", async () => {
    const res = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: alphaKey }),
    });
    const token = (await readJson<TokenEndpointBody>(res)).access_token;
    const sse = await openSse(`${kw.url}/v1/credentials/events`, { authorization: `Bearer ${token}` });
    expect(sse.status).toBe(200);
    const revoked = await fetch(`${kw.url}/oauth/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${token}` },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(revoked.status).toBe(200);
    await sse.ended;
    expect((await call("GET", "/v1/credentials/events", token)).status).toBe(401);
  });

  it("a stream opened with a token ends when the token expires", async () => {
    const res = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: alphaKey, duration_secs: 1 }),
    });
    const { access_token: token } = (await res.json()) as { access_token: string };
    const sse = await openSse(`${kw.url}/v1/credentials/events`, { authorization: `Bearer ${token}` });
    expect(sse.status).toBe(200);
    const opened = Date.now();
    await sse.ended;
    // Ended by the token's own expiry (≤ 1 s away), not by the 15 s heartbeat.
    expect(Date.now() - opened).toBeLessThan(10_000);
  });

  it("a stream opened with a key ends when the key expires", async () => {
    const k = await kw.admin("POST", "/keys", { owner: "agent:alpha", scopes: [], expires_in: 2 });
    expect(k.status).toBe(201);
    const sse = await openSse(`${kw.url}/v1/credentials/events`, { authorization: `Bearer ${k.body.secret}` });
    expect(sse.status).toBe(200);
    const opened = Date.now();
    await sse.ended;
    expect(Date.now() - opened).toBeLessThan(10_000);
    expect((await call("GET", "/v1/credentials", k.body.secret)).body.error.code).toBe("key_expired");
  });

  it("a stream opened with a token ends when its key is revoked", async () => {
    const k = await kw.admin("POST", "/keys", { owner: "agent:alpha", scopes: [] });
    const res = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: k.body.secret }),
    });
    const token = (await readJson<TokenEndpointBody>(res)).access_token;
    const sse = await openSse(`${kw.url}/v1/credentials/events`, { authorization: `Bearer ${token}` });
    expect(sse.status).toBe(200);
    expect((await kw.admin("POST", `/keys/${k.body.key.id}/revoke`)).status).toBe(200);
    await sse.ended;
  });
});

describe("issue 11, finding 8: narrowing a key narrows the tokens minted from it", () => {
  it("a token loses the scopes its key lost, at the gateway, in the upstream JWT and at introspection", async () => {
    expect((await kw.admin("POST", "/consumers", { name: "narrow" })).status).toBe(201);
    const created = await kw.admin("POST", "/keys", {
      owner: "consumer:narrow",
      scopes: ["agent:alpha", "agent:beta", "read:x"],
    });
    expect(created.status).toBe(201);
    const key = created.body;
    const res = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: key.secret }),
    });
    const token = (await readJson<TokenEndpointBody>(res)).access_token;
    expect((await call("GET", "/agents/beta/echo", token)).status).toBe(200);

    const patched = await kw.admin("PATCH", `/keys/${key.key.id}`, { scopes: ["agent:alpha"] });
    expect(patched.status).toBe(200);

    const denied = await call("GET", "/agents/beta/echo", token);
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("scope_denied");
    const allowed = await call("GET", "/agents/alpha/echo", token);
    expect(allowed.status).toBe(200);
    const upstreamJwt = (allowed.body.headers.authorization as string).slice("Bearer ".length);
    expect(decodeJwt(upstreamJwt).scope).toBe("agent:alpha");

    const introspected = await form("/oauth/introspect", { token }, { authorization: `Bearer ${alphaKey}` });
    expect(introspected.body).toMatchObject({ active: true, scope: "agent:alpha" });
    const asBeta = await form("/oauth/introspect", { token }, { authorization: `Bearer ${betaKey}` });
    expect(asBeta.body).toEqual({ active: false });
  });
});
