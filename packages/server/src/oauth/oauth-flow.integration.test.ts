import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accountOf, mcpClient, textOf } from "../../test-support/mcp/fixtures.js";
import {
  ALICE_CLOUD_KEY,
  authorizeAs,
  type OAuthStack,
  postForm,
  REDIRECT_URI,
  redeem,
  registerClient,
  startOAuthStack,
} from "../../test-support/mcp-oauth.js";

let stack: OAuthStack;

beforeAll(async () => {
  stack = await startOAuthStack();
});
afterAll(async () => {
  await stack?.close();
});

describe("the authorization server for MCP clients, driven over HTTP", () => {
  it("advertises the flow in its RFC 8414 metadata", async () => {
    const res = await fetch(`${stack.kw.url}/.well-known/oauth-authorization-server`);
    const meta = (await res.json()) as Record<string, string[]>;
    expect(meta).toMatchObject({
      issuer: stack.kw.url,
      authorization_endpoint: `${stack.kw.url}/oauth/authorize`,
      registration_endpoint: `${stack.kw.url}/oauth/register`,
      token_endpoint: `${stack.kw.url}/oauth/token`,
      code_challenge_methods_supported: ["S256"],
      response_types_supported: ["code"],
      authorization_response_iss_parameter_supported: true,
    });
    expect(meta.grant_types_supported).toEqual(expect.arrayContaining(["authorization_code", "refresh_token"]));
    expect(meta.token_endpoint_auth_methods_supported).toContain("none");
  });

  it("lets browser-based MCP clients (the MCP Inspector) call the metadata, registration and token endpoints (CORS), never the cookie-bound ones", async () => {
    for (const path of ["/.well-known/oauth-authorization-server", "/oauth/register", "/oauth/token"]) {
      const pre = await fetch(`${stack.kw.url}${path}`, {
        method: "OPTIONS",
        headers: { origin: "http://localhost:6274", "access-control-request-method": "POST" },
      });
      expect(pre.status, path).toBe(204);
      expect(pre.headers.get("access-control-allow-origin"), path).toBe("*");
      expect(pre.headers.get("access-control-allow-headers"), path).toContain("mcp-protocol-version");
    }
    const meta = await fetch(`${stack.kw.url}/.well-known/oauth-authorization-server`, {
      headers: { origin: "http://localhost:6274" },
    });
    expect(meta.headers.get("access-control-allow-origin")).toBe("*");
    const token = await postForm(
      `${stack.kw.url}/oauth/token`,
      { grant_type: "authorization_code" },
      { origin: "http://localhost:6274" },
    );
    expect(token.status).toBe(400);
    expect(token.headers.get("access-control-allow-origin")).toBe("*");
    const res = await fetch(`${stack.kw.url}/oauth/register`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: "http://localhost:6274" },
      body: JSON.stringify({ redirect_uris: ["http://localhost:6274/oauth/callback"] }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    // The browser steps bound to the flow cookie answer no CORS at all.
    for (const path of ["/oauth/authorize?client_id=x", "/oauth/callback?state=x"]) {
      const page = await fetch(`${stack.kw.url}${path}`, {
        headers: { origin: "http://localhost:6274" },
        redirect: "manual",
      });
      expect(page.headers.get("access-control-allow-origin"), path).toBeNull();
    }
    const consent = await fetch(`${stack.kw.url}/oauth/authorize/consent`, { method: "OPTIONS" });
    expect(consent.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("registers a public client (RFC 7591) with the metadata it asked for", async () => {
    const r = await registerClient(stack.kw);
    expect(r.status).toBe(201);
    expect(r.body.client_id).toMatch(/^oac_[0-9A-Za-z]{22}$/);
    expect(r.body).toMatchObject({
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      client_name: "Test MCP client",
    });
    expect(r.body.client_secret).toBeUndefined();
  });

  it("signs a user in at the provider, asks consent, and issues a code bound to the resource; the token calls the tool", async () => {
    const { client, verifier, back, code, consentPage } = await authorizeAs(stack, "alice");
    expect(`${back.origin}${back.pathname}`).toBe(REDIRECT_URI);
    expect(back.searchParams.get("state")).toBe("st-123");
    expect(back.searchParams.get("iss")).toBe(stack.kw.url);
    expect(code).toMatch(/^[0-9A-Za-z]{43}$/);
    // The consent page named the server, the client, where it returns, the user and the scopes.
    expect(consentPage).toContain("<code>cloud</code>");
    expect(consentPage).toContain("Test MCP client");
    expect(consentPage).toContain("127.0.0.1:53682");
    expect(consentPage).toContain("user:alice");
    expect(consentPage).toContain("<code>mcp:cloud</code>");
    // The provider was asked with our own PKCE and nonce, and its callback is ours.
    expect(stack.idp.lastAuthorize?.get("code_challenge_method")).toBe("S256");
    expect(stack.idp.lastAuthorize?.get("redirect_uri")).toBe(`${stack.kw.url}/oauth/callback`);

    const token = await redeem(stack, code as string, client.client_id, verifier);
    expect(token.status).toBe(200);
    expect(token.body).toMatchObject({ token_type: "Bearer", scope: "mcp:cloud" });
    expect(token.body.refresh_token).toMatch(/^kwr_/);
    expect(token.headers.get("cache-control")).toBe("no-store");
    const claims = decodeJwt(token.body.access_token);
    expect(claims).toMatchObject({
      sub: "user:alice",
      aud: stack.resource(),
      client_id: client.client_id,
      scope: "mcp:cloud",
    });
    expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(stack.kw.config.token_max_lifetime_s);

    const mcp = await mcpClient(stack.kw.url, "cloud", token.body.access_token);
    try {
      const tools = await mcp.listTools();
      expect(tools.tools.map((t) => t.name)).toContain("whoami");
      const result = await mcp.callTool({ name: "whoami", arguments: {} });
      expect(textOf(result)).toContain(accountOf(ALICE_CLOUD_KEY));
      expect(JSON.stringify(result)).not.toContain(ALICE_CLOUD_KEY);
    } finally {
      await mcp.close();
    }
  });

  it("rotates the refresh token; the spent one presented again revokes the family", async () => {
    const { client, verifier, code } = await authorizeAs(stack, "alice");
    const first = await redeem(stack, code as string, client.client_id, verifier);
    expect(first.status).toBe(200);
    const refresh = (token: string, extra: Record<string, string> = {}) =>
      postForm(`${stack.kw.url}/oauth/token`, {
        grant_type: "refresh_token",
        refresh_token: token,
        client_id: client.client_id,
        ...extra,
      });
    const second = await refresh(first.body.refresh_token, { resource: stack.resource() });
    expect(second.status).toBe(200);
    expect(second.body.refresh_token).not.toBe(first.body.refresh_token);
    expect(decodeJwt(second.body.access_token)).toMatchObject({ aud: stack.resource(), sub: "user:alice" });
    const reused = await refresh(first.body.refresh_token);
    expect(reused.status).toBe(400);
    expect(reused.body.error).toBe("invalid_grant");
    // The whole family died with the reuse: the newest one too.
    const after = await refresh(second.body.refresh_token);
    expect(after.status).toBe(400);
    expect(after.body.error).toBe("invalid_grant");
  });

  it("a public client's refresh must name its client_id", async () => {
    const { client, verifier, code } = await authorizeAs(stack, "alice");
    const first = await redeem(stack, code as string, client.client_id, verifier);
    const bare = await postForm(`${stack.kw.url}/oauth/token`, {
      grant_type: "refresh_token",
      refresh_token: first.body.refresh_token,
    });
    expect(bare.status).toBe(400);
    expect(bare.body.error).toBe("invalid_request");
  });

  it("Deny at the consent page sends access_denied back with the state, and no code", async () => {
    const { back } = await authorizeAs(stack, "alice", { state: "st-deny" }, "deny");
    expect(back.searchParams.get("error")).toBe("access_denied");
    expect(back.searchParams.get("state")).toBe("st-deny");
    expect(back.searchParams.get("iss")).toBe(stack.kw.url);
    expect(back.searchParams.get("code")).toBeNull();
  });
});

describe("the audit trail of the flows above", () => {
  it("records registrations, consents granted and denied (actor: the user) and tokens issued by authorization_code", async () => {
    type Event = { actor: string; action: string; target: string; outcome: string; details: Record<string, unknown> };
    const events = async (action: string) =>
      ((await stack.kw.admin("GET", `/audit?action=${action}&limit=100`)).body.events as Event[]) ?? [];
    const registered = await events("oauth.client_register");
    expect(registered.length).toBeGreaterThan(3);
    expect(registered[0]?.target).toMatch(/^oac_/);
    const consents = await events("oauth.authorize");
    expect(consents.some((e) => e.outcome === "success" && e.actor === "user:alice")).toBe(true);
    expect(consents.some((e) => e.outcome === "denied" && e.actor === "user:alice")).toBe(true);
    expect(consents[0]?.details).toMatchObject({ resource: stack.resource() });
    const issued = (await events("token.issue")).filter((e) => e.details.grant === "authorization_code");
    expect(issued.length).toBeGreaterThan(0);
    expect(issued[0]).toMatchObject({ actor: "user:alice", target: stack.resource(), outcome: "success" });
    expect(issued[0]?.details.key_id).toMatch(/^oac_/);
    const refreshed = (await events("token.issue")).filter((e) => e.details.grant === "refresh_token");
    expect(refreshed[0]).toMatchObject({ actor: "user:alice", target: stack.resource() });
  });
});

describe("without sign-in configured", () => {
  it("the endpoints are advertised, registration works, and /oauth/authorize answers temporarily_unavailable", async () => {
    const bare = await startOAuthStack({ signIn: false });
    try {
      const meta = (await (await fetch(`${bare.kw.url}/.well-known/oauth-authorization-server`)).json()) as Record<
        string,
        unknown
      >;
      expect(meta.authorization_endpoint).toBe(`${bare.kw.url}/oauth/authorize`);
      const { back, consentPage } = await authorizeAs(bare, "alice");
      expect(consentPage).toBeUndefined();
      expect(back.searchParams.get("error")).toBe("temporarily_unavailable");
      expect(back.searchParams.get("iss")).toBe(bare.kw.url);
      expect(bare.idp.lastAuthorize).toBeUndefined();
    } finally {
      await bare.close();
    }
  });
});
