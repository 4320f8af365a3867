import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  authorizeUrl,
  type OAuthStack,
  pkce,
  postForm,
  REDIRECT_URI,
  registerClient,
  startOAuthStack,
} from "../../test-support/mcp-oauth.js";
import { HttpBrowser, signInAndConsent } from "../../test-support/oauth-browser.js";
import { createLogger } from "../ops/logger.js";

// Every secret of the flow — a confidential client's secret, the provider's code and ID token,
// our code, the access and refresh tokens, the sign-in client's secret — planted by running the
// flow (and refusals that carry them), then searched for in the trace logs, the audit log and the
// data dir's files (codes and secrets are stored as keyed hashes only).

const SIGN_IN_SECRET = "idp-client-secret-canary-5b7f0e2c9a";
const logs: string[] = [];
let stack: OAuthStack;
const secrets = {
  signIn: SIGN_IN_SECRET,
  client: "",
  verifier: "",
  providerCode: "",
  code: "",
  access: "",
  refresh: "",
};

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

beforeAll(async () => {
  const logger = createLogger({ level: "trace", destination: { write: (l: string) => logs.push(l) } });
  stack = await startOAuthStack({
    start: { logger },
    env: { KEYWARD_LOG_LEVEL: "trace", KEYWARD_ACCESS_LOG: "true", KEYWARD_MCP_SIGN_IN_CLIENT_SECRET: SIGN_IN_SECRET },
  });
  const client = await registerClient(stack.kw, { token_endpoint_auth_method: "client_secret_post" });
  secrets.client = client.body.client_secret;
  const { verifier, challenge } = pkce();
  secrets.verifier = verifier;
  const browser = new HttpBrowser();
  const { final } = await signInAndConsent(
    browser,
    authorizeUrl(stack.kw, {
      response_type: "code",
      client_id: client.body.client_id,
      redirect_uri: REDIRECT_URI,
      code_challenge: challenge,
      code_challenge_method: "S256",
      resource: stack.resource(),
      state: "canary-state",
    }),
    { username: "alice", redirectUri: REDIRECT_URI },
  );
  const callback = browser.visited.find((u) => u.startsWith(`${stack.kw.url}/oauth/callback`)) as string;
  secrets.providerCode = new URL(callback).searchParams.get("code") as string;
  secrets.code = new URL(final).searchParams.get("code") as string;
  const form = {
    grant_type: "authorization_code",
    code: secrets.code,
    redirect_uri: REDIRECT_URI,
    client_id: client.body.client_id,
    client_secret: secrets.client,
    code_verifier: verifier,
  };
  // A wrong secret first: a refusal must not echo what it was given.
  expect((await postForm(`${stack.kw.url}/oauth/token`, { ...form, client_secret: `${secrets.client}x` })).status).toBe(
    401,
  );
  const t = await postForm(`${stack.kw.url}/oauth/token`, form);
  expect(t.status).toBe(200);
  secrets.access = t.body.access_token;
  secrets.refresh = t.body.refresh_token;
  // The code replayed (revokes what it issued), then the revoked refresh token presented twice.
  await postForm(`${stack.kw.url}/oauth/token`, form);
  const refresh = {
    grant_type: "refresh_token",
    refresh_token: secrets.refresh,
    client_id: client.body.client_id,
    client_secret: secrets.client,
  };
  await postForm(`${stack.kw.url}/oauth/token`, refresh);
  await postForm(`${stack.kw.url}/oauth/token`, refresh);
});
afterAll(async () => {
  await stack?.close();
});

describe("no secret of the authorization flow leaks", () => {
  it("the planted secrets are real (the flow ran, the provider was paid with our secret)", () => {
    for (const [name, value] of Object.entries(secrets)) expect(value.length, name).toBeGreaterThan(10);
    expect(stack.idp.redeemed).toBe(1);
    const basic = Buffer.from((stack.idp.lastTokenAuthorization ?? "").replace(/^Basic /, ""), "base64").toString();
    expect(basic).toBe(`keyward:${SIGN_IN_SECRET}`);
  });

  it("is not in the trace logs, the audit log or the data dir's files", async () => {
    const audit = await stack.kw.admin("GET", "/audit?limit=500");
    const actions = (audit.body.events as Array<{ action: string }>).map((e) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining(["oauth.client_register", "oauth.authorize", "token.issue", "token.revoke"]),
    );
    expect(logs.length).toBeGreaterThan(10);
    const places: Array<[string, string]> = [
      ["logs", logs.join("\n")],
      ["audit", JSON.stringify(audit.body)],
      ...filesUnder(stack.kw.dataDir).map((f): [string, string] => [f, readFileSync(f).toString("latin1")]),
    ];
    for (const [where, text] of places) {
      for (const [name, value] of Object.entries(secrets)) {
        expect(text.includes(value), `${name} in ${where}`).toBe(false);
      }
    }
  });
});
