import { expect } from "vitest";
import { s256 } from "../../src/oauth/code-grant.js";
import { HttpBrowser, signInAndConsent } from "../oauth-browser.js";

type Check = (method: string, path: string, res: Response) => Promise<unknown>;

const REDIRECT = "http://127.0.0.1:53682/cb";
const VERIFIER = "v".repeat(43);

async function register(base: string, check: Check, body: unknown) {
  const res = await fetch(`${base}/oauth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: validated against the document by `check`
  return { status: res.status, body: (await check("POST", "/oauth/register", res)) as any };
}

/**
 * The authorization server's documented answers (SPEC §12): registration, the authorize
 * endpoint's redirect and error page, the callback's consent page, redirect and error page, the
 * consent's code redirect and its refusals, and the code at the token endpoint. Every Keyward
 * response the browser sees is checked against the document.
 */
export async function exerciseOAuthFlow(
  base: string,
  resource: string,
  adminToken: string,
  check: Check,
): Promise<void> {
  const client = await register(base, check, { redirect_uris: [REDIRECT], client_name: "conformance" });
  expect(client.status).toBe(201);
  expect((await register(base, check, { redirect_uris: ["javascript:alert(1)"] })).status).toBe(400);

  const browser = new HttpBrowser();
  browser.inspect = async (method, url, res) => {
    if (url.startsWith(base)) await check(method, new URL(url).pathname, res);
  };
  const authorize = (params: Record<string, string>) => {
    const url = new URL(`${base}/oauth/authorize`);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url.toString();
  };
  const valid = {
    response_type: "code",
    client_id: client.body.client_id as string,
    redirect_uri: REDIRECT,
    code_challenge: s256(VERIFIER),
    code_challenge_method: "S256",
    resource,
    state: "s",
  };
  expect((await browser.request(authorize({ ...valid, client_id: "oac_nobody" }))).status).toBe(400);
  expect((await browser.request(`${base}/oauth/callback?state=unknown&code=x`)).status).toBe(400);
  const { final } = await signInAndConsent(browser, authorize(valid), { username: "alice", redirectUri: REDIRECT });
  const code = new URL(final).searchParams.get("code") as string;
  expect(code).toMatch(/^[0-9A-Za-z]{43}$/);
  // The IdP says the user refused: back to the client with access_denied, from the callback.
  const denied = await signInAndConsent(browser, authorize(valid), { username: "deny", redirectUri: REDIRECT });
  expect(new URL(denied.final).searchParams.get("error")).toBe("access_denied");
  // A consent answer from another origin, and a replayed one.
  const forged = await browser.request(`${base}/oauth/authorize/consent`, {
    method: "POST",
    form: { consent: "x", csrf: "y", decision: "approve" },
    headers: { origin: "https://evil.example" },
  });
  expect(forged.status).toBe(403);
  const notForm = await browser.request(`${base}/oauth/authorize/consent`, {
    method: "POST",
    headers: { origin: base },
  });
  expect(notForm.status).toBe(400);

  const token = await fetch(`${base}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      client_id: valid.client_id,
      code_verifier: VERIFIER,
    }).toString(),
  });
  expect(token.status).toBe(200);
  await check("POST", "/oauth/token", token);

  // The admin's view of registrations, and a removal (its refresh tokens revoked with it).
  const admin = (method: string, path: string) =>
    fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${adminToken}` } });
  const listed = (await check(
    "GET",
    "/admin/v1/oauth-clients",
    await admin("GET", "/admin/v1/oauth-clients?limit=10"),
  )) as {
    items: Array<{ client_id: string }>;
  };
  expect(listed.items.map((c) => c.client_id)).toContain(valid.client_id);
  const badLimit = await admin("GET", "/admin/v1/oauth-clients?limit=0");
  expect(badLimit.status).toBe(400);
  await check("GET", "/admin/v1/oauth-clients", badLimit);
  const removed = await admin("DELETE", `/admin/v1/oauth-clients/${valid.client_id}`);
  expect(removed.status).toBe(204);
  await check("DELETE", `/admin/v1/oauth-clients/${valid.client_id}`, removed);
  const again = await admin("DELETE", `/admin/v1/oauth-clients/${valid.client_id}`);
  expect(again.status).toBe(404);
  await check("DELETE", `/admin/v1/oauth-clients/${valid.client_id}`, again);
}

/** Registrations until the table is full (503), then until the address's bound (429): last, it spends both. */
export async function exerciseRegistrationBounds(base: string, check: Check): Promise<void> {
  const seen = new Set<number>();
  for (let i = 0; i < 30 && !seen.has(429); i++) {
    seen.add((await register(base, check, { redirect_uris: [REDIRECT] })).status);
  }
  expect([...seen].sort()).toEqual([201, 429, 503]);
}
