import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  authorizeAs,
  authorizeUrl,
  type OAuthStack,
  oauthRowCounts,
  pkce,
  REDIRECT_URI,
  registerClient,
  startOAuthStack,
} from "../../test-support/mcp-oauth.js";
import { formAction, HttpBrowser, hiddenField } from "../../test-support/oauth-browser.js";

// Attacks on the browser side of the flow (SPEC §12): each refused before any sign-in or code,
// with an error page when the redirect URI cannot be trusted and `error=` to it otherwise.

let stack: OAuthStack;
let clientId: string;
let appClientId: string;
const { challenge } = pkce();

beforeAll(async () => {
  stack = await startOAuthStack();
  clientId = (await registerClient(stack.kw)).body.client_id;
  appClientId = (await registerClient(stack.kw, { redirect_uris: ["https://app.example.com/cb"] })).body.client_id;
});
afterAll(async () => {
  await stack?.close();
});

const valid = () => ({
  response_type: "code",
  client_id: clientId,
  redirect_uri: REDIRECT_URI,
  code_challenge: challenge,
  code_challenge_method: "S256",
  resource: stack.resource(),
  state: "st",
});

/** GET /oauth/authorize without following: the status, where it sends the browser, the page. */
async function authorize(params: Record<string, string | undefined>) {
  const res = await fetch(authorizeUrl(stack.kw, params), { redirect: "manual" });
  const location = res.headers.get("location");
  return {
    status: res.status,
    location: location === null ? undefined : new URL(location),
    text: await res.text(),
    res,
  };
}

/** The client was sent back with `error` (and its state and our iss), never to the IdP. */
function expectErrorRedirect(r: Awaited<ReturnType<typeof authorize>>, error: string) {
  expect(r.status).toBe(302);
  expect(`${r.location?.origin}${r.location?.pathname}`).toBe(REDIRECT_URI);
  expect(r.location?.searchParams.get("error")).toBe(error);
  expect(r.location?.searchParams.get("state")).toBe("st");
  expect(r.location?.searchParams.get("iss")).toBe(stack.kw.url);
}

describe("authorization requests refused before sign-in", () => {
  it("open redirect: an unregistered redirect_uri gets an error page, never a redirect", async () => {
    for (const uri of ["https://evil.example/cb", "http://127.0.0.1:53682/callback/../evil", `${REDIRECT_URI}?x=1`]) {
      const r = await authorize({ ...valid(), redirect_uri: uri, response_type: "token" });
      expect(r.status).toBe(400);
      expect(r.location).toBeUndefined();
      expect(r.res.headers.get("content-type")).toMatch(/^text\/html/);
      expect(r.res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
      expect(r.text).not.toContain("evil.example");
    }
  });

  it("a loopback IP redirect may use another port (RFC 8252 §7.3), nothing else about it may differ", async () => {
    const otherPort = await authorize({ ...valid(), redirect_uri: "http://127.0.0.1:40001/callback" });
    expect(otherPort.status).toBe(302);
    expect(otherPort.location?.origin).toBe(stack.idp.url);
    for (const uri of [
      "http://127.0.0.1:40001/other",
      "http://127.0.0.1:40001/callback?x=1",
      "https://127.0.0.1:40001/callback",
      "http://127.0.0.2:53682/callback",
      "http://localhost:53682/callback",
      "http://[::1]:53682/callback",
    ]) {
      const r = await authorize({ ...valid(), redirect_uri: uri });
      expect(r.status, uri).toBe(400);
      expect(r.location, uri).toBeUndefined();
    }
  });

  it("an unknown client gets an error page, never a redirect", async () => {
    const r = await authorize({ ...valid(), client_id: "oac_nobody0000000000000000" });
    expect(r.status).toBe(400);
    expect(r.location).toBeUndefined();
  });

  it("a redirect_uri with another port on a registered non-loopback host is not registered: error page", async () => {
    const r = await authorize({ ...valid(), client_id: appClientId, redirect_uri: "https://app.example.com:8443/cb" });
    expect(r.status).toBe(400);
    expect(r.location).toBeUndefined();
  });

  it("missing PKCE: invalid_request back to the client", async () => {
    expectErrorRedirect(
      await authorize({ ...valid(), code_challenge: undefined, code_challenge_method: undefined }),
      "invalid_request",
    );
  });

  it("plain PKCE: invalid_request back to the client (S256 only)", async () => {
    expectErrorRedirect(
      await authorize({ ...valid(), code_challenge: "x".repeat(43), code_challenge_method: "plain" }),
      "invalid_request",
    );
  });

  it("response_type other than code: unsupported_response_type", async () => {
    expectErrorRedirect(await authorize({ ...valid(), response_type: "token" }), "unsupported_response_type");
  });

  it("no resource, another origin's, or an unknown server: invalid_target", async () => {
    expectErrorRedirect(await authorize({ ...valid(), resource: undefined }), "invalid_target");
    expectErrorRedirect(await authorize({ ...valid(), resource: "https://evil.example/mcp/cloud" }), "invalid_target");
    expectErrorRedirect(await authorize({ ...valid(), resource: stack.resource("nope") }), "invalid_target");
  });

  it("a scope of another server or not an MCP scope: invalid_scope", async () => {
    expectErrorRedirect(await authorize({ ...valid(), scope: "mcp:garbage" }), "invalid_scope");
    expectErrorRedirect(await authorize({ ...valid(), scope: "agent:*" }), "invalid_scope");
  });

  it("a parameter given twice: invalid_request", async () => {
    const url = `${authorizeUrl(stack.kw, valid())}&scope=mcp:cloud&scope=mcp:cloud`;
    const res = await fetch(url, { redirect: "manual" });
    expect(new URL(res.headers.get("location") as string).searchParams.get("error")).toBe("invalid_request");
  });

  it("authorization requests waiting for sign-in are bounded (max_pending): beyond, temporarily_unavailable", async () => {
    const small = await startOAuthStack({ mcpAuthorization: { max_pending: 1 } });
    try {
      const id = (await registerClient(small.kw)).body.client_id as string;
      const ask = () =>
        fetch(authorizeUrl(small.kw, { ...valid(), client_id: id, resource: small.resource() }), {
          redirect: "manual",
        });
      const first = new URL((await ask()).headers.get("location") as string);
      expect(first.origin).toBe(small.idp.url);
      const second = new URL((await ask()).headers.get("location") as string);
      expect(`${second.origin}${second.pathname}`).toBe(REDIRECT_URI);
      expect(second.searchParams.get("error")).toBe("temporarily_unavailable");
      expect(oauthRowCounts(small.kw).oauth_requests).toBe(1);
    } finally {
      await small.close();
    }
  });

  it("nothing is stored for any of these refusals", async () => {
    const before = oauthRowCounts(stack.kw);
    await authorize({ ...valid(), code_challenge_method: "plain" });
    await authorize({ ...valid(), redirect_uri: "https://evil.example/cb" });
    await authorize({ ...valid(), resource: stack.resource("nope") });
    await authorize({ ...valid(), scope: "mcp:garbage" });
    expect(oauthRowCounts(stack.kw)).toEqual(before);
    expect(stack.idp.lastAuthorize).toBeUndefined();
  });
});

describe("the sign-in and consent steps", () => {
  /** Up to the consent page, in `browser`. */
  async function toConsent(browser: HttpBrowser, params: Record<string, string> = {}) {
    const first = await browser.follow(authorizeUrl(stack.kw, { ...valid(), ...params }), REDIRECT_URI);
    if ("stoppedAt" in first) throw new Error(`stopped at ${first.stoppedAt}`);
    const loginUrl = browser.visited.at(-1) as string;
    const posted = await browser.request(formAction(first.page.text, loginUrl), {
      method: "POST",
      form: { request: hiddenField(first.page.text, "request"), username: "alice" },
    });
    const callbackUrl = posted.location as string;
    const consent = await browser.follow(callbackUrl, REDIRECT_URI);
    if ("stoppedAt" in consent) throw new Error(`stopped at ${consent.stoppedAt}`);
    return {
      callbackUrl,
      page: consent.page,
      form: {
        consent: hiddenField(consent.page.text, "consent"),
        csrf: hiddenField(consent.page.text, "csrf"),
        decision: "approve",
      },
    };
  }
  const consentUrl = () => `${stack.kw.url}/oauth/authorize/consent`;
  const own = () => ({ origin: stack.kw.url });

  it("the consent page has a strict CSP, no secret, and the flow cookie is HttpOnly and SameSite=Lax", async () => {
    const browser = new HttpBrowser();
    const first = await browser.request(authorizeUrl(stack.kw, valid()));
    const cookie = first.res.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^keyward_oauth=[0-9A-Za-z]{43}; Path=\/oauth; HttpOnly; SameSite=Lax/);
    const { page } = await toConsent(new HttpBrowser());
    const csp = page.res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(page.res.headers.get("cache-control")).toBe("no-store");
    expect(page.text).not.toMatch(/kw[rkac]_|eyJ/);
  });

  it("a consent forged from another origin is refused (403) and does not spend the real one", async () => {
    const browser = new HttpBrowser();
    const { form } = await toConsent(browser);
    const forged = await browser.request(consentUrl(), {
      method: "POST",
      form,
      headers: { origin: "https://evil.example" },
    });
    expect(forged.status).toBe(403);
    expect(forged.location).toBeUndefined();
    const crossSite = await browser.request(consentUrl(), {
      method: "POST",
      form,
      headers: { "sec-fetch-site": "cross-site" },
    });
    expect(crossSite.status).toBe(403);
    const real = await browser.request(consentUrl(), { method: "POST", form, headers: own() });
    expect(real.status).toBe(302);
    expect(new URL(real.location as string).searchParams.get("code")).toMatch(/^[0-9A-Za-z]{43}$/);
  });

  it("a consent posted without this browser's cookie, or with a wrong CSRF token, is refused (403)", async () => {
    const browser = new HttpBrowser();
    const { form } = await toConsent(browser);
    const otherBrowser = await new HttpBrowser().request(consentUrl(), { method: "POST", form, headers: own() });
    expect(otherBrowser.status).toBe(403);
    const wrongCsrf = await browser.request(consentUrl(), {
      method: "POST",
      form: { ...form, csrf: "A".repeat(43) },
      headers: own(),
    });
    expect(wrongCsrf.status).toBe(403);
  });

  it("a consent replayed after its answer is refused with an error page, and issues no second code", async () => {
    const browser = new HttpBrowser();
    const { form } = await toConsent(browser);
    expect((await browser.request(consentUrl(), { method: "POST", form, headers: own() })).status).toBe(302);
    const before = oauthRowCounts(stack.kw);
    const replay = await browser.request(consentUrl(), { method: "POST", form, headers: own() });
    expect(replay.status).toBe(400);
    expect(replay.location).toBeUndefined();
    expect(oauthRowCounts(stack.kw).oauth_codes).toBe(before.oauth_codes);
  });

  it("the provider's callback replayed (pending state used twice) is refused with an error page", async () => {
    const browser = new HttpBrowser();
    const { callbackUrl } = await toConsent(browser);
    const replay = await browser.request(callbackUrl);
    expect(replay.status).toBe(400);
    expect(replay.text).toContain("Sign-in expired");
  });

  it("a callback in another browser than the one that started the request is refused", async () => {
    const browser = new HttpBrowser();
    const first = await browser.follow(authorizeUrl(stack.kw, valid()), REDIRECT_URI);
    if ("stoppedAt" in first) throw new Error("no login page");
    const posted = await browser.request(formAction(first.page.text, browser.visited.at(-1) as string), {
      method: "POST",
      form: { request: hiddenField(first.page.text, "request"), username: "alice" },
    });
    const elsewhere = await new HttpBrowser().request(posted.location as string);
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.text).toContain("another browser");
  });

  it("an ID token whose nonce is not the request's is not trusted: access_denied, no consent", async () => {
    stack.idp.forceNonce = "not-the-nonce";
    try {
      const { back, consentPage } = await authorizeAs(stack, "alice");
      expect(consentPage).toBeUndefined();
      expect(back.searchParams.get("error")).toBe("access_denied");
      expect(back.searchParams.get("code")).toBeNull();
    } finally {
      stack.idp.forceNonce = undefined;
    }
  });

  it("an ID token issued to another client of the provider (an audience the trusted issuer also accepts) is not a sign-in", async () => {
    stack.idp.forceAudience = "another-app";
    try {
      const { back, consentPage } = await authorizeAs(stack, "alice");
      expect(consentPage).toBeUndefined();
      expect(back.searchParams.get("error")).toBe("access_denied");
    } finally {
      stack.idp.forceAudience = undefined;
    }
  });

  it("a scope beyond what the user may have is refused after sign-in: invalid_scope", async () => {
    // This provider's users may call one tool of cloud only.
    const narrow = await startOAuthStack({ scopes: ["mcp:cloud:whoami"] });
    try {
      const wide = await authorizeAs(narrow, "alice", { scope: "mcp:cloud" });
      expect(wide.consentPage).toBeUndefined();
      expect(wide.back.searchParams.get("error")).toBe("invalid_scope");
      const allowed = await authorizeAs(narrow, "alice");
      expect(allowed.consentPage).toContain("<code>mcp:cloud:whoami</code>");
      expect(allowed.back.searchParams.get("code")).not.toBeNull();
    } finally {
      await narrow.close();
    }
  });
});
