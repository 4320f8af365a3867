import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { type SeenRequest, startUpstream } from "../../test-support/upstream.js";
import { type ApiErrorBody, readJson } from "../../test-support/wire.js";

/**
 * Issue 11, finding 6: a key's `ip_allow` holds on every path that takes the key, or a token
 * minted from it: `/v1/auth/token`, `client_credentials`, refresh, introspection, and a key
 * presented as an actor token. The test client is 127.0.0.1, a trusted proxy here, so
 * X-Forwarded-For names the address each request comes from.
 */
const ALLOWED = "203.0.113.7";
const OTHER = "198.51.100.9";
const TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";

let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;
let fenced: { id: string; secret: string };
let fencedAgent: { id: string; secret: string };
let openAgent: string;

async function post(path: string, from: string, body: Record<string, string>, headers: Record<string, string> = {}) {
  const json = path === "/v1/auth/token";
  const res = await fetch(`${kw.url}${path}`, {
    method: "POST",
    headers: {
      "content-type": json ? "application/json" : "application/x-www-form-urlencoded",
      "x-forwarded-for": from,
      ...headers,
    },
    body: json ? JSON.stringify(body) : new URLSearchParams(body).toString(),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, string | boolean> };
}

beforeAll(async () => {
  up = await startUpstream();
  kw = await startTestServer({ KEYWARD_TRUSTED_PROXIES: "127.0.0.1/32" });
  for (const name of ["w", "d"])
    expect((await kw.admin("POST", "/agents", { name, upstream: up.url })).status).toBe(201);
  await kw.admin("PUT", "/agents/w/grants", { credentials: [], may_call: ["d"] });
  await kw.admin("POST", "/consumers", { name: "c" });
  const k = await kw.admin("POST", "/keys", {
    owner: "consumer:c",
    scopes: ["agent:w", "agent:d"],
    ip_allow: [`${ALLOWED}/32`],
  });
  fenced = { id: k.body.key.id, secret: k.body.secret };
  const a = await kw.admin("POST", "/keys", { owner: "agent:w", scopes: [], ip_allow: [`${ALLOWED}/32`] });
  fencedAgent = { id: a.body.key.id, secret: a.body.secret };
  openAgent = (await kw.admin("POST", "/keys", { owner: "agent:w", scopes: [] })).body.secret;
});

afterAll(async () => {
  await kw?.close();
  await up?.close();
});

describe("ip_allow on every path that takes a key", () => {
  it("/v1/auth/token: from the allowed address only", async () => {
    expect((await post("/v1/auth/token", ALLOWED, { api_key: fenced.secret })).status).toBe(200);
    const r = await post("/v1/auth/token", OTHER, { api_key: fenced.secret });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe("invalid_grant");
  });

  it("client_credentials: from the allowed address only", async () => {
    const params = { grant_type: "client_credentials", client_id: fenced.id, client_secret: fenced.secret };
    expect((await post("/oauth/token", ALLOWED, params)).status).toBe(200);
    const r = await post("/oauth/token", OTHER, params);
    expect(r.status).toBe(401);
    expect(r.body.error).toBe("invalid_client");
  });

  it("refresh_token: a refresh from another address is refused", async () => {
    const issued = await post("/v1/auth/token", ALLOWED, { api_key: fenced.secret });
    const refresh = issued.body.refresh_token as string;
    const r = await post("/oauth/token", OTHER, { grant_type: "refresh_token", refresh_token: refresh });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe("invalid_grant");
    // Refused before use: the holder can still refresh from its own address.
    expect((await post("/oauth/token", ALLOWED, { grant_type: "refresh_token", refresh_token: refresh })).status).toBe(
      200,
    );
  });

  it("introspection with an agent key: from the allowed address only", async () => {
    const token = (await post("/v1/auth/token", ALLOWED, { api_key: fenced.secret })).body.access_token as string;
    const auth = { authorization: `Bearer ${fencedAgent.secret}` };
    expect((await post("/oauth/introspect", ALLOWED, { token }, auth)).body.active).toBe(true);
    const r = await post("/oauth/introspect", OTHER, { token }, auth);
    expect(r.status).toBe(401);
    expect(r.body.error).toBe("invalid_client");
  });

  it("a key presented as actor_token: from the allowed address only", async () => {
    const jwt = await fetch(`${kw.url}/agents/w/echo`, {
      headers: { authorization: `Bearer ${openAgent}`, "x-forwarded-for": ALLOWED },
    });
    expect(jwt.status).toBe(403); // the agent key has no agent:w scope; use the consumer's
    const forwarded = await fetch(`${kw.url}/agents/w/echo`, {
      headers: { authorization: `Bearer ${fenced.secret}`, "x-forwarded-for": ALLOWED },
    });
    const subject = ((await readJson<SeenRequest>(forwarded)).headers.authorization as string).slice(7);
    const params = {
      grant_type: EXCHANGE,
      subject_token: subject,
      subject_token_type: TOKEN_TYPE,
      actor_token: fencedAgent.secret,
      actor_token_type: TOKEN_TYPE,
      audience: "d",
    };
    expect((await post("/oauth/token", ALLOWED, params)).status).toBe(200);
    const r = await post("/oauth/token", OTHER, params);
    expect(r.status).toBe(400);
    expect(r.body.error).toBe("invalid_grant");
  });

  it("a token minted from the key is refused from another address at Keyward's endpoints and the gateway", async () => {
    const token = (await post("/v1/auth/token", ALLOWED, { api_key: fenced.secret })).body.access_token as string;
    const at = (from: string) =>
      fetch(`${kw.url}/agents/w/echo`, { headers: { authorization: `Bearer ${token}`, "x-forwarded-for": from } });
    expect((await at(ALLOWED)).status).toBe(200);
    const r = await at(OTHER);
    expect(r.status).toBe(403);
    expect((await readJson<ApiErrorBody>(r)).error.code).toBe("ip_denied");
  });
});
