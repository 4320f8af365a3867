import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalJWKSet, decodeJwt, type JSONWebKeySet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OidcIssuer, startOidcIssuer } from "../../test-support/oidc-issuer.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";
import { frozenClock } from "../clock.js";

const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";

interface ErrorBody {
  error: { code: string };
}

let kw: TestServer;
let idp: OidcIssuer;
let mailIdp: OidcIssuer;
let up: Awaited<ReturnType<typeof startUpstream>>;
let dir: string;
const clock = frozenClock(Date.now());
const nowS = () => Math.floor(clock.now() / 1000);

async function form(path: string, params: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(`${kw.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const exchange = (subjectToken: string, extra: Record<string, string> = {}) =>
  form("/oauth/token", {
    grant_type: TOKEN_EXCHANGE,
    subject_token: subjectToken,
    subject_token_type: JWT_TYPE,
    ...extra,
  });

const gateway = (agent: string, token: string) =>
  fetch(`${kw.url}/agents/${agent}/hi`, { headers: { authorization: `Bearer ${token}` } });

beforeAll(async () => {
  [idp, mailIdp, up] = await Promise.all([startOidcIssuer(), startOidcIssuer(), startUpstream()]);
  dir = mkdtempSync(join(tmpdir(), "kw-idp-"));
  const configFile = join(dir, "keyward.yaml");
  writeFileSync(
    configFile,
    JSON.stringify({
      trusted_issuers: [
        // The first keeps the ids of admin-made user keys on purpose; the second is apart, as `mail.`.
        {
          issuer: idp.url,
          jwks_uri: idp.jwksUri,
          audience: "keyward",
          share_user_ids_with_keys: true,
          scopes: ["agent:*", "mcp:cloud"],
        },
        {
          issuer: mailIdp.url,
          jwks_uri: mailIdp.jwksUri,
          audience: ["other-app", "keyward-mail"],
          subject_claim: "email",
          user_prefix: "mail.",
          scopes: ["agent:echo"],
          algorithms: ["ES256"],
        },
      ],
    }),
  );
  kw = await startTestServer({}, { configFile, clock });
  expect((await kw.admin("POST", "/agents", { name: "echo", upstream: up.url })).status).toBe(201);
  expect((await kw.admin("POST", "/agents", { name: "other", upstream: up.url })).status).toBe(201);
});
afterAll(async () => {
  await kw?.close();
  await Promise.all([idp?.close(), mailIdp?.close(), up?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("exchange of a trusted issuer's JWT for a user token (SPEC §8)", () => {
  it("mints a user token with the issuer's scopes, aud = Keyward, no refresh token, that the gateway accepts", async () => {
    const ext = idp.sign({ sub: "alice", aud: "keyward", exp: nowS() + 300 });
    const r = await exchange(ext);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      access_token: expect.any(String),
      issued_token_type: ACCESS_TYPE,
      token_type: "Bearer",
      expires_in: 300,
      scope: "agent:* mcp:cloud",
    });
    const jwks = (await (await fetch(`${kw.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
    const { payload } = await jwtVerify(r.body.access_token, createLocalJWKSet(jwks), {
      issuer: kw.url,
      audience: kw.url,
      typ: "at+jwt",
      algorithms: ["ES256"],
      currentDate: new Date(clock.now()),
    });
    expect(payload).toMatchObject({ sub: "user:alice", scope: "agent:* mcp:cloud", exp: nowS() + 300 });
    expect(payload.client_id).toMatch(/^idp:[A-Za-z0-9_-]{16}$/);
    expect(payload.act).toBeUndefined();

    const res = await gateway("echo", r.body.access_token);
    expect(res.status).toBe(200);
    const forwarded = up.seen.at(-1)?.headers.authorization?.replace(/^Bearer /, "") ?? "";
    expect(decodeJwt(forwarded)).toMatchObject({ sub: "user:alice", aud: "echo" });
  });

  it("never outlives token_max_lifetime_s, and narrows to a requested scope", async () => {
    const ext = idp.sign({ sub: "alice", aud: ["x", "keyward"], exp: nowS() + 86_400 });
    const r = await exchange(ext, { scope: "mcp:cloud" });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ expires_in: 3600, scope: "mcp:cloud" });
    const res = await gateway("echo", r.body.access_token);
    expect(res.status).toBe(403);
    expect(((await res.json()) as ErrorBody).error.code).toBe("scope_denied");
  });

  it("with audience = an agent: aud is that agent only; no actor token is needed", async () => {
    const r = await exchange(idp.sign({ sub: "bob", aud: "keyward" }), { audience: "echo" });
    expect(r.status).toBe(200);
    expect(decodeJwt(r.body.access_token)).toMatchObject({ sub: "user:bob", aud: "echo" });
    expect((await gateway("echo", r.body.access_token)).status).toBe(200);
    const elsewhere = await gateway("other", r.body.access_token);
    expect(elsewhere.status).toBe(401);
  });

  it("takes the user from subject_claim (email) and the issuer's pinned ES256 keys", async () => {
    const mail = { sub: "ignored-id", email: "alice@example.com", email_verified: true, aud: "keyward-mail" };
    const r = await exchange(mailIdp.sign(mail, { alg: "ES256" }));
    expect(r.status).toBe(200);
    expect(decodeJwt(r.body.access_token)).toMatchObject({ sub: "user:mail.alice@example.com", scope: "agent:echo" });
    expect((await gateway("echo", r.body.access_token)).status).toBe(200);
    // RS256 is a real key of that issuer, but not an algorithm this entry accepts.
    const rs = await exchange(mailIdp.sign(mail));
    expect(rs.status).toBe(400);
    expect(rs.body.error).toBe("invalid_grant");
  });

  it("picks up a key rotation at the issuer with one refetch of its JWKS for the unknown kid", async () => {
    expect((await exchange(idp.sign({ sub: "carol", aud: "keyward" }))).status).toBe(200);
    const hits = idp.jwksHits;
    idp.rotate();
    // Twenty exchanges with the new kid at once share one refetch.
    const fresh = idp.sign({ sub: "carol", aud: "keyward" });
    const all = await Promise.all(Array.from({ length: 20 }, () => exchange(fresh)));
    expect(all.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(idp.jwksHits).toBe(hits + 1);
    // The new key is now known: no further fetch.
    expect((await exchange(idp.sign({ sub: "carol", aud: "keyward" }, { alg: "ES256" }))).status).toBe(200);
    expect(idp.jwksHits).toBe(hits + 1);
  });

  it("is ended one by one by jti revocation, and its user token can be exchanged for an agent audience", async () => {
    const minted = (await exchange(idp.sign({ sub: "dave", aud: "keyward" }))).body.access_token as string;
    const delegated = await form("/oauth/token", {
      grant_type: TOKEN_EXCHANGE,
      subject_token: minted,
      subject_token_type: ACCESS_TYPE,
      audience: "echo",
    });
    expect(delegated.status).toBe(200);
    expect(decodeJwt(delegated.body.access_token)).toMatchObject({ sub: "user:dave", aud: "echo" });

    expect((await gateway("echo", minted)).status).toBe(200);
    // A user token has no key to authenticate with: its holder presents the token itself.
    expect((await form("/oauth/revoke", { token: minted }, { authorization: `Bearer ${minted}` })).status).toBe(200);
    const after = await gateway("echo", minted);
    expect(after.status).toBe(401);
    expect(((await after.json()) as ErrorBody).error.code).toBe("invalid_token");
  });

  it("is its user at Keyward's own API: /v1/users/me sees user:<id>", async () => {
    const minted = (await exchange(idp.sign({ sub: "frank", aud: "keyward" }))).body.access_token as string;
    const auth = { authorization: `Bearer ${minted}` };
    const put = await fetch(`${kw.url}/v1/users/me/credentials/cloud_key`, {
      method: "PUT",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ value: "frank-secret-value" }),
    });
    expect(put.status).toBeLessThan(300);
    const listed = await kw.admin("GET", "/users/frank/credentials");
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).toContain("cloud_key");
  });

  it("audits the exchange with the issuer and the user, never a token", async () => {
    const ext = idp.sign({ sub: "erin", aud: "keyward" });
    const r = await exchange(ext, { audience: "echo" });
    expect(r.status).toBe(200);
    const audit = await kw.admin("GET", "/audit?action=token.exchange&limit=100");
    const event = (audit.body.events as { actor: string; target: string; details: Record<string, unknown> }[]).find(
      (e) => e.actor === "user:erin",
    );
    expect(event).toMatchObject({ target: "agent:echo", details: { grant: "jwt", issuer: idp.url, sub: "user:erin" } });
    const text = JSON.stringify(audit.body);
    for (const secret of [ext, r.body.access_token as string]) {
      expect(text).not.toContain(secret.split(".")[2]);
    }
  });
});
