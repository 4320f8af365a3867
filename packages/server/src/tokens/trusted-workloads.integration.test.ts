import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorkloadKeyward, type WorkloadKeyward } from "../../test-support/cluster-issuer.js";

const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";

let env: WorkloadKeyward;

async function form(params: Record<string, string>) {
  const res = await fetch(`${env.kw.url}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const bearer = (assertion: string, extra: Record<string, string> = {}) =>
  form({ grant_type: JWT_BEARER, assertion, ...extra });
const viaExchange = (subject: string, extra: Record<string, string> = {}) =>
  form({ grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: JWT_TYPE, ...extra });

const get = (path: string, token: string) =>
  fetch(`${env.kw.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

beforeAll(async () => {
  env = await startWorkloadKeyward();
});
afterAll(async () => {
  await env?.close();
});

describe("workload identity: a platform token becomes the agent's access token", () => {
  it("RFC 7523 jwt-bearer: sub = agent:<name>, aud = Keyward, short-lived, no refresh token", async () => {
    const sa = env.cluster.serviceAccountToken("research", "agent");
    const r = await bearer(sa);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      access_token: expect.any(String),
      issued_token_type: ACCESS_TYPE,
      token_type: "Bearer",
      expires_in: 900,
      scope: "agent:other",
    });
    const claims = decodeJwt(r.body.access_token);
    expect(claims).toMatchObject({ sub: "agent:research", aud: env.kw.url, iss: env.kw.url, scope: "agent:other" });
    expect(claims.client_id).toMatch(/^idp:[A-Za-z0-9_-]{16}$/);
  });

  it("RFC 8693 with subject_token_type jwt gives the same agent token; a scope narrows it", async () => {
    const r = await viaExchange(env.cluster.serviceAccountToken("research", "agent"), { scope: "" });
    expect(r.status).toBe(200);
    expect(decodeJwt(r.body.access_token)).toMatchObject({ sub: "agent:research", aud: env.kw.url });
    const narrowed = await bearer(env.cluster.serviceAccountToken("research", "agent"), { scope: "agent:echo" });
    expect(narrowed).toMatchObject({ status: 400, body: { error: "invalid_scope" } });
  });

  it("never outlives the platform token", async () => {
    const nowS = Math.floor(Date.now() / 1000);
    const r = await bearer(env.cluster.serviceAccountToken("research", "agent", { exp: nowS + 120 }));
    expect(r.status).toBe(200);
    expect(r.body.expires_in).toBeLessThanOrEqual(120);
    expect(decodeJwt(r.body.access_token).exp).toBeLessThanOrEqual(nowS + 120);
  });

  it("works where the agent's key works: credentials, the event stream, tool audit, egress, and as actor of a token exchange", async () => {
    const { body } = await bearer(env.cluster.serviceAccountToken("research", "agent"));
    const token = body.access_token as string;

    const creds = await get("/v1/credentials", token);
    expect(creds.status).toBe(200);
    expect(JSON.stringify(await creds.json())).toContain("sk-research-1");

    const ac = new AbortController();
    const stream = await fetch(`${env.kw.url}/v1/credentials/events`, {
      headers: { authorization: `Bearer ${token}` },
      signal: ac.signal,
    });
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toMatch(/^text\/event-stream/);
    ac.abort();
    await stream.body?.cancel().catch(() => {});

    // A tool-call audit record, as an agent's tools send it (SPEC §7).
    const recorded = await fetch(`${env.kw.url}/v1/audit/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ tool: "search", user: "user:alice", outcome: "ok", redactions: 0 }),
    });
    expect(recorded.status).toBe(201);

    // Egress: the credential injected upstream, under the agent's inject grant.
    const seen: string[] = [];
    const upstream = createServer((req, res) => {
      seen.push(req.headers.authorization ?? "");
      res.writeHead(200, { "content-type": "text/plain" }).end("upstream ok");
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    try {
      const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
      expect(
        (await env.kw.admin("PUT", "/credentials/research_api", { value: "rk-123456789", egress: { base_url: base } }))
          .status,
      ).toBeLessThan(300);
      const grants = await env.kw.admin("PUT", "/agents/research/grants", {
        credentials: [
          { name: "research_openai", mode: "read" },
          { name: "research_api", mode: "inject" },
        ],
        may_call: ["other"],
      });
      expect(grants.status).toBe(200);
      const egress = await get("/egress/research_api/v1/items", token);
      expect(egress.status).toBe(200);
      expect(await egress.text()).toBe("upstream ok");
      expect(seen).toEqual(["Bearer rk-123456789"]);
    } finally {
      upstream.closeAllConnections();
      await new Promise((resolve) => upstream.close(resolve));
    }

    // A user's token handed to research (aud = research), exchanged for agent `other` with the
    // workload token as actor: may_call decides, as with the agent's key.
    const { secret } = (await env.kw.admin("POST", "/keys", { owner: "user:alice", scopes: ["agent:*"] })).body;
    const userToken = await fetch(`${env.kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: secret, audience: "research" }),
    }).then((r) => r.json() as Promise<{ access_token: string }>);
    const delegated = await form({
      grant_type: TOKEN_EXCHANGE,
      subject_token: userToken.access_token,
      subject_token_type: ACCESS_TYPE,
      actor_token: token,
      actor_token_type: ACCESS_TYPE,
      audience: "other",
    });
    expect(delegated.status).toBe(200);
    expect(decodeJwt(delegated.body.access_token)).toMatchObject({
      sub: "user:alice",
      aud: "other",
      act: { sub: "agent:research" },
    });
  });

  it("maps a CI job by exact claims (repository and ref)", async () => {
    const job = env.cluster.sign({
      sub: "repo:acme/agents:ref:refs/heads/main",
      aud: "keyward-ci",
      repository: "acme/agents",
      ref: "refs/heads/main",
    });
    const r = await bearer(job);
    expect(r.status).toBe(200);
    expect(decodeJwt(r.body.access_token).sub).toBe("agent:ci");
  });

  it("audits the exchange with the agent as actor, issuer and subject, never the token", async () => {
    const sa = env.cluster.serviceAccountToken("research", "agent");
    const r = await bearer(sa);
    expect(r.status).toBe(200);
    const page = await env.kw.admin("GET", "/audit?action=token.exchange&limit=1000");
    const events = page.body.events as Array<Record<string, unknown>>;
    const mine = events.find((e) => (e.details as { jti?: string }).jti === decodeJwt(r.body.access_token).jti);
    expect(mine).toMatchObject({
      actor: "agent:research",
      details: {
        grant: "workload_jwt_bearer",
        issuer: env.cluster.url,
        subject: "system:serviceaccount:research:agent",
      },
    });
    const text = JSON.stringify(events);
    expect(text).not.toContain(sa.split(".")[2]);
    expect(text).not.toContain(r.body.access_token.split(".")[2]);
  });

  it("advertises jwt-bearer in the authorization server metadata", async () => {
    const meta = (await (await fetch(`${env.kw.url}/.well-known/oauth-authorization-server`)).json()) as {
      grant_types_supported: string[];
    };
    expect(meta.grant_types_supported).toContain(JWT_BEARER);
  });
});
