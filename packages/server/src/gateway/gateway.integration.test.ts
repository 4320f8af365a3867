import http from "node:http";
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { type SeenRequest, startUpstream } from "../../test-support/upstream.js";
import { type ApiErrorBody, readJson } from "../../test-support/wire.js";
import { generateSecret } from "../crypto/secret-format.js";

let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;

async function key(body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const r = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"], ...body });
  expect(r.status).toBe(201);
  return { id: r.body.key.id, secret: r.body.secret };
}

function call(path: string, headers: Record<string, string> = {}, init: RequestInit = {}) {
  return fetch(`${kw.url}${path}`, { ...init, headers });
}

/** node:http, for what fetch will not send as is (Connection headers, unnormalized paths). */
function rawCall(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(kw.url);
    const req = http.request({ hostname, port, path, headers, agent: false }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function expectDenied(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  const body = await readJson<ApiErrorBody>(res);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.request_id).toBe("string");
  return body;
}

beforeAll(async () => {
  up = await startUpstream();
  kw = await startTestServer({ KEYWARD_UPSTREAM_TIMEOUT_MS: "300" });
  expect((await kw.admin("POST", "/agents", { name: "echo", upstream: `${up.url}/base` })).status).toBe(201);
  expect((await kw.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
});

describe("gateway: allowed requests", () => {
  it("forwards with a Keyward JWT instead of the caller's key, keeping path, query and body", async () => {
    const k = await key({ scopes: ["agent:echo", "read:docs"] });
    const res = await call(
      "/agents/echo/hello/world?x=1&y=two",
      { "x-api-key": k.secret, "content-type": "text/plain" },
      {
        method: "POST",
        body: "ping",
      },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBeTruthy();
    const seen = await readJson<SeenRequest>(res);
    expect(seen.method).toBe("POST");
    expect(seen.url).toBe("/base/hello/world?x=1&y=two");
    expect(seen.body).toBe("ping");
    expect(seen.headers["x-api-key"]).toBeUndefined();
    expect(JSON.stringify(seen.headers)).not.toContain(k.secret);
    const auth = seen.headers.authorization as string;
    expect(auth.startsWith("Bearer ey")).toBe(true);
    const jwks = await readJson<JSONWebKeySet>(await fetch(`${kw.url}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(auth.slice(7), createLocalJWKSet(jwks), {
      algorithms: ["ES256"],
      audience: "echo",
      issuer: kw.url,
      typ: "at+jwt",
    });
    expect(protectedHeader.kid).toBeTruthy();
    expect(payload.sub).toBe("consumer:acme");
    expect(payload.scope).toBe("agent:echo read:docs");
    expect(payload.client_id).toBe(k.id);
    expect((payload.exp as number) - (payload.iat as number)).toBeLessThanOrEqual(300);
  });

  it("accepts Authorization: Bearer kwk_… and agent:*", async () => {
    const k = await key({ scopes: ["agent:*"] });
    expect((await call("/agents/echo/", { authorization: `Bearer ${k.secret}` })).status).toBe(200);
  });

  it("streams SSE chunk by chunk", async () => {
    const k = await key({});
    const res = await call("/agents/echo/sse", { "x-api-key": k.secret });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    expect(res.headers.get("x-upstream-only")).toBeNull(); // named in Connection: hop-by-hop
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    for (let i = 1; i <= 3; i++) {
      await up.sse.next();
      const { value } = await reader.read();
      // Each event arrives before the upstream is allowed to write the next one.
      expect(dec.decode(value)).toBe(`data: event ${i}\n\n`);
    }
    expect((await reader.read()).done).toBe(true);
  });

  it("drops hop-by-hop headers and the ones the caller's Connection header names", async () => {
    const k = await key({});
    const res = await rawCall("/agents/echo/h", {
      "x-api-key": k.secret,
      connection: "keep-alive, x-private",
      "x-private": "1",
      "x-kept": "2",
      "x-request-id": "req-123",
    });
    const seen = JSON.parse(res.body);
    expect(seen.headers["x-private"]).toBeUndefined();
    expect(seen.headers["x-kept"]).toBe("2");
    expect(seen.headers["x-request-id"]).toBe("req-123");
  });

  it("refuses dot segments that would climb out of the upstream's base path", async () => {
    const k = await key({});
    for (const path of ["/agents/echo/%2e%2e/secret", "/agents/echo/a/../../x", "/agents/echo/./x"]) {
      const res = await rawCall(path, { "x-api-key": k.secret });
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body).error.code).toBe("invalid_request");
    }
  });
});

describe("gateway: every check, in order", () => {
  it("missing, malformed, bad-checksum and unknown credentials", async () => {
    await expectDenied(await call("/agents/echo/x"), 401, "missing_credentials");
    await expectDenied(await call("/agents/echo/x", { "x-api-key": "kwk_short" }), 401, "invalid_key");
    const good = generateSecret("kwk");
    const badChecksum = `${good.slice(0, -1)}${good.endsWith("0") ? "1" : "0"}`;
    await expectDenied(await call("/agents/echo/x", { "x-api-key": badChecksum }), 401, "invalid_key");
    await expectDenied(await call("/agents/echo/x", { "x-api-key": good }), 401, "invalid_key");
    await expectDenied(await call("/agents/echo/x", { authorization: "Bearer not-a-token" }), 401, "invalid_token");
    await expectDenied(await call("/agents/echo/x", { authorization: "Basic Zm9vOmJhcg==" }), 401, "invalid_token");
  });

  it("revoke takes effect on the next request", async () => {
    const k = await key({});
    expect((await call("/agents/echo/x", { "x-api-key": k.secret })).status).toBe(200);
    expect((await kw.admin("POST", `/keys/${k.id}/revoke`)).status).toBe(200);
    await expectDenied(await call("/agents/echo/x", { "x-api-key": k.secret }), 401, "key_revoked");
  });

  it("deleting the owner revokes its keys on the next request", async () => {
    expect((await kw.admin("POST", "/consumers", { name: "leaving" })).status).toBe(201);
    const r = await kw.admin("POST", "/keys", { owner: "consumer:leaving", scopes: ["agent:echo"] });
    expect((await call("/agents/echo/x", { "x-api-key": r.body.secret })).status).toBe(200);
    expect((await kw.admin("DELETE", "/consumers/leaving")).status).toBe(204);
    await expectDenied(await call("/agents/echo/x", { "x-api-key": r.body.secret }), 401, "key_revoked");
    expect((await kw.admin("GET", `/keys/${r.body.key.id}`)).body.status).toBe("revoked");
    // A new key for a deleted owner is refused.
    expect((await kw.admin("POST", "/keys", { owner: "consumer:leaving", scopes: [] })).status).toBe(400);
  });

  it("freeze and unfreeze", async () => {
    const k = await key({});
    expect((await call("/agents/echo/x", { "x-api-key": k.secret })).status).toBe(200);
    await kw.admin("POST", `/keys/${k.id}/freeze`);
    await expectDenied(await call("/agents/echo/x", { "x-api-key": k.secret }), 401, "key_frozen");
    await kw.admin("POST", `/keys/${k.id}/unfreeze`);
    expect((await call("/agents/echo/x", { "x-api-key": k.secret })).status).toBe(200);
  });

  it("rotate: new key works, old key works during grace, then key_expired", async () => {
    const k = await key({});
    const withGrace = await kw.admin("POST", `/keys/${k.id}/rotate`, { grace_s: 3600 });
    expect(withGrace.status).toBe(201);
    expect(withGrace.body.secret).not.toBe(k.secret);
    expect((await call("/agents/echo/x", { "x-api-key": k.secret })).status).toBe(200);
    expect((await call("/agents/echo/x", { "x-api-key": withGrace.body.secret })).status).toBe(200);
    const again = await kw.admin("POST", `/keys/${k.id}/rotate`, {});
    expect(again.status).toBe(409);
    const next = await kw.admin("POST", `/keys/${withGrace.body.key.id}/rotate`, {});
    expect(next.status).toBe(201);
    await expectDenied(await call("/agents/echo/x", { "x-api-key": withGrace.body.secret }), 401, "key_expired");
    expect((await call("/agents/echo/x", { "x-api-key": next.body.secret })).status).toBe(200);
  });

  it("expiry set by PATCH applies on the next request", async () => {
    const k = await key({ expires_in: 3600 });
    expect((await call("/agents/echo/x", { "x-api-key": k.secret })).status).toBe(200);
    const past = await kw.admin("PATCH", `/keys/${k.id}`, { expires_at: new Date(Date.now() - 1000).toISOString() });
    expect(past.status).toBe(400); // the past is refused
    expect((await kw.admin("PATCH", `/keys/${k.id}`, { scopes: ["agent:other"] })).status).toBe(200);
    await expectDenied(await call("/agents/echo/x", { "x-api-key": k.secret }), 403, "scope_denied");
  });

  it("ip allowlist, scopes, unknown agents", async () => {
    const far = await key({ ip_allow: ["10.0.0.0/8"] });
    await expectDenied(await call("/agents/echo/x", { "x-api-key": far.secret }), 403, "ip_denied");
    const near = await key({ ip_allow: ["127.0.0.0/8", "::1/128"] });
    expect((await call("/agents/echo/x", { "x-api-key": near.secret })).status).toBe(200);
    // X-Forwarded-For from an untrusted peer proves nothing.
    await expectDenied(
      await call("/agents/echo/x", { "x-api-key": far.secret, "x-forwarded-for": "10.1.2.3" }),
      403,
      "ip_denied",
    );
    const narrow = await key({ scopes: ["agent:other"] });
    await expectDenied(await call("/agents/echo/x", { "x-api-key": narrow.secret }), 403, "scope_denied");
    await expectDenied(await call("/agents/nope/x", { "x-api-key": narrow.secret }), 403, "scope_denied");
    const wide = await key({ scopes: ["agent:*"] });
    await expectDenied(await call("/agents/nope/x", { "x-api-key": wide.secret }), 404, "agent_not_found");
    await expectDenied(await call("/agents/a%2Fb/x", { "x-api-key": wide.secret }), 404, "agent_not_found");
  });

  it("rate limit with RateLimit-* and Retry-After headers", async () => {
    const k = await key({ rate_limit: { limit: 2, window_s: 3600 } });
    const first = await call("/agents/echo/x", { "x-api-key": k.secret });
    expect(first.headers.get("ratelimit-limit")).toBe("2");
    expect(first.headers.get("ratelimit-remaining")).toBe("1");
    expect((await call("/agents/echo/x", { "x-api-key": k.secret })).status).toBe(200);
    const third = await call("/agents/echo/x", { "x-api-key": k.secret });
    await expectDenied(third, 429, "rate_limited");
    expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(third.headers.get("ratelimit-remaining")).toBe("0");
    expect(Number(third.headers.get("ratelimit-reset"))).toBeLessThanOrEqual(3600);
  });

  it("quota, with Retry-After at the period's end", async () => {
    const k = await key({ quota: { limit: 2, period: "day" } });
    expect((await call("/agents/echo/x", { "x-api-key": k.secret })).status).toBe(200);
    expect((await call("/agents/echo/x", { "x-api-key": k.secret })).status).toBe(200);
    const res = await call("/agents/echo/x", { "x-api-key": k.secret });
    await expectDenied(res, 429, "quota_exceeded");
    expect(Number(res.headers.get("retry-after"))).toBeLessThanOrEqual(86_400);
  });

  it("upstream down → 502, upstream silent → 504", async () => {
    expect((await kw.admin("POST", "/agents", { name: "down", upstream: "http://127.0.0.1:9" })).status).toBe(201);
    const k = await key({ scopes: ["agent:down", "agent:echo"] });
    await expectDenied(await call("/agents/down/x", { "x-api-key": k.secret }), 502, "upstream_unavailable");
    await expectDenied(await call("/agents/echo/hang", { "x-api-key": k.secret }), 504, "upstream_timeout");
  });

  it("forward-auth answers like the gateway", async () => {
    const k = await key({});
    const ok = await call("/v1/verify", { "x-api-key": k.secret, "x-original-uri": "/agents/echo/anything?q=1" });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("authorization")?.startsWith("Bearer ey")).toBe(true);
    const post = await fetch(`${kw.url}/v1/verify`, {
      method: "POST",
      headers: { "x-api-key": k.secret, "x-forwarded-uri": "/agents/echo/submit" },
      body: "ignored",
    });
    expect(post.status).toBe(200);
    const no = await call("/v1/verify", { "x-original-uri": "/agents/echo/x" });
    await expectDenied(no, 401, "missing_credentials");
    expect(no.headers.get("x-keyward-code")).toBe("missing_credentials");
  });

  it("denials are audited with their codes, without the key", async () => {
    const k = await key({});
    await kw.admin("POST", `/keys/${k.id}/revoke`);
    await call("/agents/echo/x", { "x-api-key": k.secret });
    await new Promise((r) => setTimeout(r, 50));
    let events: Array<{ code?: string; details?: { key_id?: string } }> = [];
    for (let i = 0; i < 40 && !events.some((e) => e.details?.key_id === k.id); i++) {
      events = (await kw.admin("GET", "/audit?action=gateway.deny&limit=1000")).body.events;
      if (!events.some((e) => e.details?.key_id === k.id)) await new Promise((r) => setTimeout(r, 25));
    }
    const mine = events.find((e) => e.details?.key_id === k.id);
    expect(mine?.code).toBe("key_revoked");
    expect(JSON.stringify(events)).not.toContain(k.secret);
    const verify = await kw.admin("GET", "/audit/verify");
    expect(verify.body.ok).toBe(true);
  });
});

describe("operations", () => {
  it("exposes decisions, cache lookups, latency and audit metrics in Prometheus text", async () => {
    const k = await key({});
    await call("/agents/echo/x", { "x-api-key": k.secret });
    await call("/agents/echo/x");
    const res = await fetch(`${kw.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/keyward_gateway_decisions_total\{code="allowed"\} [1-9]/);
    expect(text).toMatch(/keyward_gateway_decisions_total\{code="missing_credentials"\} [1-9]/);
    expect(text).toMatch(/keyward_key_cache_lookups_total\{result="(hit|miss)"\} [1-9]/);
    expect(text).toContain("keyward_gateway_check_seconds_bucket");
    expect(text).toContain("keyward_audit_failures_total");
    expect(text).toMatch(/keyward_http_requests_total\{route="gateway",status="200"\}/);
    expect(text).toMatch(/keyward_admin_changes_total\{action="key.create"\} [1-9]/);
    expect(text).toMatch(/keyward_rotations_total\{kind="key"\} [1-9]/);
    expect(text).toMatch(/keyward_tokens_issued_total\{kind="upstream"\} [1-9]/);
    expect(text).not.toContain(k.secret);
  });

  it("health and readiness", async () => {
    expect(await (await fetch(`${kw.url}/healthz`)).json()).toEqual({ status: "ok" });
    expect(await (await fetch(`${kw.url}/readyz`)).json()).toEqual({ status: "ready" });
  });
});
