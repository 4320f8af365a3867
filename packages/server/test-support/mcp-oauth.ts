import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { StartOptions } from "../src/app.js";
import { s256 } from "../src/oauth/code-grant.js";
import { setUserCredential, writeMcpConfig } from "./mcp/fixtures.js";
import { HttpBrowser, signInAndConsent } from "./oauth-browser.js";
import { type OidcProvider, startOidcProvider } from "./oidc-provider.js";
import { startTestServer, type TestServer } from "./server.js";
import { startTestServerAt } from "./server-at.js";

export const ALICE_CLOUD_KEY = "AKIA-alice-oauth-0123456789-secret";
/** Where the test's MCP client "listens" (nothing does: the flow stops at the redirect). */
export const REDIRECT_URI = "http://127.0.0.1:53682/callback";

export interface OAuthStack {
  kw: TestServer;
  idp: OidcProvider;
  /** `<kw>/mcp/<server>`: the RFC 8707 resource of an MCP server. */
  resource(server?: string): string;
  close(): Promise<void>;
}

/**
 * Keyward with MCP servers (test-support/mcp: `cloud`, `garbage`, `dead`), a local OIDC provider
 * as the sign-in issuer (a trusted issuer granting `mcp:cloud`, user ids shared with admin-made
 * keys so `user:alice` has her credential), and https redirects allowed on app.example.com.
 */
export async function startOAuthStack(
  opts: {
    /** Keep the store here (restart tests; the caller removes it) instead of a temp dir removed on close. */
    dataDir?: string;
    /** An identity provider already running (kept running on close). */
    idp?: OidcProvider;
    signIn?: boolean;
    mcpAuthorization?: Record<string, unknown>;
    scopes?: string[];
    start?: StartOptions;
    env?: Record<string, string>;
  } = {},
): Promise<OAuthStack> {
  const idp = opts.idp ?? (await startOidcProvider());
  const file = writeMcpConfig();
  const config = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  config.trusted_issuers = [
    {
      issuer: idp.url,
      jwks_uri: idp.jwksUri,
      audience: ["keyward", "another-app"],
      share_user_ids_with_keys: true,
      scopes: opts.scopes ?? ["mcp:cloud"],
    },
  ];
  config.mcp_authorization = {
    ...(opts.signIn === false ? {} : { sign_in: { issuer: idp.url, client_id: "keyward" } }),
    redirect_hosts: ["app.example.com"],
    ...opts.mcpAuthorization,
  };
  writeFileSync(file, JSON.stringify(config, null, 2));
  const start = { configFile: file, ...opts.start };
  const kw =
    opts.dataDir === undefined
      ? await startTestServer(opts.env ?? {}, start)
      : await startTestServerAt(opts.dataDir, opts.env ?? {}, start);
  await setUserCredential(kw, "alice", "cloud_key", ALICE_CLOUD_KEY);
  return {
    kw,
    idp,
    resource: (server = "cloud") => `${kw.url}/mcp/${server}`,
    async close() {
      await kw.close();
      if (opts.idp === undefined) await idp.close();
    },
  };
}

export async function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: each test asserts the shape it needs
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, body, headers: res.headers };
}

export async function registerClient(kw: TestServer, metadata: Record<string, unknown> = {}) {
  const res = await fetch(`${kw.url}/oauth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [REDIRECT_URI], client_name: "Test MCP client", ...metadata }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: each test asserts the shape it needs
  return { status: res.status, body: (await res.json()) as any };
}

export function pkce() {
  const verifier = randomBytes(48).toString("base64url");
  return { verifier, challenge: s256(verifier) };
}

export function authorizeUrl(kw: TestServer, params: Record<string, string | undefined>): string {
  const url = new URL(`${kw.url}/oauth/authorize`);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url.toString();
}

/**
 * Registration, authorization with sign-in and consent over HTTP, and the code: what an MCP client
 * holds before its token request.
 */
export async function authorizeAs(
  stack: OAuthStack,
  username: string,
  extra: Record<string, string | undefined> = {},
  decision: "approve" | "deny" = "approve",
) {
  const client = (await registerClient(stack.kw)).body as { client_id: string };
  const { verifier, challenge } = pkce();
  const browser = new HttpBrowser();
  const { final, consentPage } = await signInAndConsent(
    browser,
    authorizeUrl(stack.kw, {
      response_type: "code",
      client_id: client.client_id,
      redirect_uri: REDIRECT_URI,
      code_challenge: challenge,
      code_challenge_method: "S256",
      resource: stack.resource(),
      state: "st-123",
      ...extra,
    }),
    { username, decision, redirectUri: REDIRECT_URI },
  );
  const back = new URL(final);
  return { client, verifier, challenge, browser, back, code: back.searchParams.get("code"), consentPage };
}

export function redeem(
  stack: OAuthStack,
  code: string,
  clientId: string,
  verifier: string,
  extra: Record<string, string> = {},
) {
  return postForm(`${stack.kw.url}/oauth/token`, {
    grant_type: "authorization_code",
    code,
    redirect_uri: REDIRECT_URI,
    client_id: clientId,
    code_verifier: verifier,
    resource: stack.resource(),
    ...extra,
  });
}

/** Rows of the authorization server's tables, read from the server's SQLite file (nothing stored for a refusal). */
export function oauthRowCounts(kw: TestServer): Record<string, number> {
  const db = new Database(join(kw.dataDir, "keyward.db"), { readonly: true, fileMustExist: true });
  try {
    const out: Record<string, number> = {};
    for (const table of ["oauth_clients", "oauth_requests", "oauth_codes", "refresh_tokens", "token_revocations"]) {
      out[table] = (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    }
    return out;
  } finally {
    db.close();
  }
}

/** A raw MCP `initialize` at `/mcp/<server>` with a bearer token: the status says whether it was let in. */
export async function mcpInitialize(kw: TestServer, server: string, token: string): Promise<number> {
  const res = await fetch(`${kw.url}/mcp/${server}`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
    }),
  });
  await res.body?.cancel();
  return res.status;
}
