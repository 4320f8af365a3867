import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  authorizeAs,
  authorizeUrl,
  mcpInitialize,
  type OAuthStack,
  oauthRowCounts,
  pkce,
  postForm,
  REDIRECT_URI,
  redeem,
  registerClient,
  startOAuthStack,
} from "../../test-support/mcp-oauth.js";
import { HttpBrowser, signInAndConsent } from "../../test-support/oauth-browser.js";

// Attacks on the token side (SPEC §12): codes, PKCE verifiers, resources and refresh tokens
// presented by the wrong party, and registrations that would open a redirect.

let stack: OAuthStack;

beforeAll(async () => {
  stack = await startOAuthStack({ mcpAuthorization: { registrations_per_minute: 40 } });
});
afterAll(async () => {
  await stack?.close();
});

const token = (form: Record<string, string>) => postForm(`${stack.kw.url}/oauth/token`, form);

describe("authorization codes", () => {
  it("a code replayed is refused, and the access and refresh tokens issued from it are revoked", async () => {
    const { client, verifier, code } = await authorizeAs(stack, "alice");
    const first = await redeem(stack, code as string, client.client_id, verifier);
    expect(first.status).toBe(200);
    expect(await mcpInitialize(stack.kw, "cloud", first.body.access_token)).toBe(200);
    const replay = await redeem(stack, code as string, client.client_id, verifier);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe("invalid_grant");
    expect(await mcpInitialize(stack.kw, "cloud", first.body.access_token)).toBe(401);
    const refreshed = await token({
      grant_type: "refresh_token",
      refresh_token: first.body.refresh_token,
      client_id: client.client_id,
    });
    expect(refreshed.body.error).toBe("invalid_grant");
  });

  it("a code for another client is refused (invalid_grant) and stays usable by its own client", async () => {
    const { client, verifier, code } = await authorizeAs(stack, "alice");
    const other = (await registerClient(stack.kw)).body.client_id as string;
    const stolen = await redeem(stack, code as string, other, verifier);
    expect(stolen.status).toBe(400);
    expect(stolen.body.error).toBe("invalid_grant");
    expect((await redeem(stack, code as string, client.client_id, verifier)).status).toBe(200);
  });

  it("a code with another redirect_uri is refused (invalid_grant)", async () => {
    const { client, verifier, code } = await authorizeAs(stack, "alice");
    const r = await redeem(stack, code as string, client.client_id, verifier, {
      redirect_uri: "http://127.0.0.1:53682/other",
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe("invalid_grant");
  });

  it("a missing, malformed or wrong code_verifier is refused (invalid_grant)", async () => {
    const { client, verifier, code } = await authorizeAs(stack, "alice");
    const base = {
      grant_type: "authorization_code",
      code: code as string,
      redirect_uri: REDIRECT_URI,
      client_id: client.client_id,
    };
    expect((await token(base)).body.error).toBe("invalid_grant");
    expect((await token({ ...base, code_verifier: "short" })).body.error).toBe("invalid_grant");
    expect((await token({ ...base, code_verifier: pkce().verifier })).body.error).toBe("invalid_grant");
    // The challenge itself as a `plain` verifier does not pass for S256.
    const challenge = pkce();
    expect((await token({ ...base, code_verifier: challenge.challenge })).body.error).toBe("invalid_grant");
    expect((await redeem(stack, code as string, client.client_id, verifier)).status).toBe(200);
  });

  it("a resource other than the code's is refused (invalid_target)", async () => {
    const { client, verifier, code } = await authorizeAs(stack, "alice");
    const r = await redeem(stack, code as string, client.client_id, verifier, { resource: stack.resource("garbage") });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe("invalid_target");
  });

  it("nothing is stored or spent for a refused token request", async () => {
    const { client, verifier, code } = await authorizeAs(stack, "alice");
    const before = oauthRowCounts(stack.kw);
    await redeem(stack, code as string, client.client_id, pkce().verifier);
    await redeem(stack, code as string, client.client_id, verifier, { redirect_uri: "http://127.0.0.1:1/x" });
    await redeem(stack, "A".repeat(43), client.client_id, verifier);
    expect(oauthRowCounts(stack.kw)).toEqual(before);
    expect((await redeem(stack, code as string, client.client_id, verifier)).status).toBe(200);
  });
});

describe("confidential clients", () => {
  it("a client_secret_basic client must authenticate with Basic and its secret; a public one must not present one", async () => {
    const reg = await registerClient(stack.kw, { token_endpoint_auth_method: "client_secret_basic" });
    const id = reg.body.client_id as string;
    const secret = reg.body.client_secret as string;
    const { verifier, challenge } = pkce();
    const { final } = await signInAndConsent(
      new HttpBrowser(),
      authorizeUrl(stack.kw, {
        response_type: "code",
        client_id: id,
        redirect_uri: REDIRECT_URI,
        code_challenge: challenge,
        code_challenge_method: "S256",
        resource: stack.resource(),
      }),
      { username: "alice", redirectUri: REDIRECT_URI },
    );
    const code = new URL(final).searchParams.get("code") as string;
    const form = { grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier };
    const basic = (s: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${s}`).toString("base64")}` });
    const url = `${stack.kw.url}/oauth/token`;
    expect((await postForm(url, { ...form, client_id: id })).body.error).toBe("invalid_client");
    expect((await postForm(url, { ...form, client_id: id, client_secret: secret })).body.error).toBe("invalid_client");
    const wrong = await postForm(url, form, basic(`${secret.slice(0, -1)}x`));
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toMatch(/^Basic/);
    expect((await postForm(url, form, basic(secret))).status).toBe(200);

    const { client } = await authorizeAs(stack, "alice");
    const publicWithSecret = await postForm(url, { ...form, client_id: client.client_id, client_secret: secret });
    expect(publicWithSecret.body.error).toBe("invalid_client");
  });
});

describe("tokens bound to one MCP server", () => {
  it("a token for server A (cloud) is refused at server B (garbage)", async () => {
    const { client, verifier, code } = await authorizeAs(stack, "alice");
    const t = await redeem(stack, code as string, client.client_id, verifier);
    expect(decodeJwt(t.body.access_token).aud).toBe(stack.resource("cloud"));
    expect(await mcpInitialize(stack.kw, "cloud", t.body.access_token)).toBe(200);
    expect(await mcpInitialize(stack.kw, "garbage", t.body.access_token)).toBe(401);
  });

  it("a refresh token presented by another client, or for another resource, is refused", async () => {
    const { client, verifier, code } = await authorizeAs(stack, "alice");
    const t = await redeem(stack, code as string, client.client_id, verifier);
    const other = (await registerClient(stack.kw)).body.client_id as string;
    const base = { grant_type: "refresh_token", refresh_token: t.body.refresh_token };
    expect((await token({ ...base, client_id: other })).body.error).toBe("invalid_grant");
    expect(
      (await token({ ...base, client_id: client.client_id, resource: stack.resource("garbage") })).body.error,
    ).toBe("invalid_target");
    expect((await token({ ...base, client_id: client.client_id })).status).toBe(200);
  });
});

describe("a removed client", () => {
  it("its refresh token is refused and its code is not redeemed; an auditor may not remove it", async () => {
    const { client, verifier, code } = await authorizeAs(stack, "alice");
    const t = await redeem(stack, code as string, client.client_id, verifier);
    const second = await authorizeAs(stack, "alice");
    const auditor = await stack.kw.admin("POST", "/admin-tokens", { name: "eyes", role: "auditor" });
    const asAuditor = await fetch(`${stack.kw.url}/admin/v1/oauth-clients/${client.client_id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${auditor.body.secret}` },
    });
    expect(asAuditor.status).toBe(403);
    expect((await stack.kw.admin("DELETE", `/oauth-clients/${client.client_id}`)).status).toBe(204);
    expect((await stack.kw.admin("DELETE", `/oauth-clients/${second.client.client_id}`)).status).toBe(204);
    const refreshed = await token({
      grant_type: "refresh_token",
      refresh_token: t.body.refresh_token,
      client_id: client.client_id,
    });
    expect(refreshed.status).toBe(401);
    expect(refreshed.body.error).toBe("invalid_client");
    const redeemed = await redeem(stack, second.code as string, second.client.client_id, second.verifier);
    expect(redeemed.body.error).toBe("invalid_client");
    const audit = await stack.kw.admin("GET", "/audit?action=oauth.client_delete");
    expect(audit.body.events.map((e: { target: string }) => e.target)).toContain(client.client_id);
  });
});

describe("registration", () => {
  const register = (uris: string[], extra: Record<string, unknown> = {}) =>
    registerClient(stack.kw, { redirect_uris: uris, ...extra });

  it("refuses javascript:, data:, custom schemes, fragments, user info and plain http off loopback", async () => {
    const before = oauthRowCounts(stack.kw);
    for (const uri of [
      "javascript:alert(1)",
      "data:text/html,hi",
      "myapp://callback",
      "http://127.0.0.1:5000/cb#frag",
      "https://user:pw@app.example.com/cb",
      "http://app.example.com/cb",
      "http://evil.example/cb",
      "https://evil.example/cb",
      "https://app.example.com.evil.example/cb",
      " http://127.0.0.1/cb",
    ]) {
      const r = await register([uri]);
      expect(r.status, uri).toBe(400);
      expect(r.body.error, uri).toBe("invalid_redirect_uri");
    }
    expect((await register([REDIRECT_URI], { grant_types: ["client_credentials"] })).body.error).toBe(
      "invalid_client_metadata",
    );
    expect(oauthRowCounts(stack.kw)).toEqual(before);
  });

  it("accepts loopback on any port (RFC 8252), https on an allowed host, and a confidential client's secret once", async () => {
    for (const uri of ["http://localhost:1234/cb", "http://[::1]:8080/cb", "https://app.example.com/oauth/cb"]) {
      expect((await register([uri])).status, uri).toBe(201);
    }
    const confidential = await register([REDIRECT_URI], { token_endpoint_auth_method: "client_secret_basic" });
    expect(confidential.status).toBe(201);
    expect(confidential.body.client_secret).toMatch(/^kwc_[0-9A-Za-z]{38}$/);
  });

  it("a registration flood from one address is bounded (429)", async () => {
    const flood = await startOAuthStack({ mcpAuthorization: { registrations_per_minute: 3 } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await registerClient(flood.kw)).status);
      expect(statuses).toEqual([201, 201, 201, 429, 429]);
      expect(oauthRowCounts(flood.kw).oauth_clients).toBe(3);
    } finally {
      await flood.close();
    }
  });

  it("beyond max_clients registration is refused (503 temporarily_unavailable), nothing stored", async () => {
    const full = await startOAuthStack({ mcpAuthorization: { max_clients: 2 } });
    try {
      expect((await registerClient(full.kw)).status).toBe(201);
      expect((await registerClient(full.kw)).status).toBe(201);
      const refused = await registerClient(full.kw);
      expect(refused.status).toBe(503);
      expect(refused.body.error).toBe("temporarily_unavailable");
      expect(oauthRowCounts(full.kw).oauth_clients).toBe(2);
    } finally {
      await full.close();
    }
  });

  it("a body over 16 KiB is refused (413) before parsing", async () => {
    const r = await register([REDIRECT_URI], { client_name: "x".repeat(20_000) });
    expect(r.status).toBe(413);
  });
});
