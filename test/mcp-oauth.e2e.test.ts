import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accountOf, mcpClient, textOf } from "../packages/server/test-support/mcp/fixtures.js";
import {
  ALICE_CLOUD_KEY,
  authorizeUrl,
  type OAuthStack,
  pkce,
  postForm,
  registerClient,
  startOAuthStack,
} from "../packages/server/test-support/mcp-oauth.js";
import { CHROMIUM, HAVE_CHROMIUM, launchChromium, STEP_TIMEOUT_MS } from "./console-browser.js";

/**
 * The authorization flow in a real Chromium (SPEC §12): the browser opens /oauth/authorize, is
 * sent to the IdP's login page, signs in, comes back to Keyward's consent page (its CSP in force)
 * and clicks Approve, and lands on the client's loopback page with a code. Keyward is reached as
 * `localhost` and the IdP as `127.0.0.1`: two sites, so the callback is a cross-site redirect on
 * which the SameSite=Lax flow cookie must be sent (a Strict one would not be). Skipped like the
 * console's browser tests where chromium is missing.
 */
const mustRun = Boolean(process.env.CI);
if (!HAVE_CHROMIUM && !mustRun) {
  console.warn(`mcp-oauth.e2e.test: skipped, ${CHROMIUM} is not installed (apt-get install chromium)`);
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

describe.skipIf(!HAVE_CHROMIUM && !mustRun)("MCP client sign-in in a real browser", () => {
  let stack: OAuthStack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** The MCP client's loopback listener (RFC 8252): it receives the redirect with the code. */
  let listener: Server;
  let callback: string;
  const received: URL[] = [];
  const cspViolations: string[] = [];

  beforeAll(async () => {
    const port = await freePort();
    stack = await startOAuthStack({ env: { KEYWARD_PORT: String(port), KEYWARD_ISSUER: `http://localhost:${port}` } });
    listener = createServer((req, res) => {
      received.push(new URL(req.url ?? "/", callback));
      res
        .writeHead(200, { "content-type": "text/html" })
        .end("<!doctype html><title>Done</title><p>You may close this window.</p>");
    });
    await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
    callback = `http://127.0.0.1:${(listener.address() as AddressInfo).port}/callback`;
    browser = await launchChromium();
    context = await browser.newContext();
    page = await context.newPage();
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await new Promise<void>((r) => (listener ? listener.close(() => r()) : r()));
    await stack?.close();
  });

  it("signs in at the IdP, approves on the consent page, and the client's code calls a tool", async () => {
    const issuer = stack.kw.config.issuer as string;
    expect(issuer).toMatch(/^http:\/\/localhost:/);
    const resource = `${issuer}/mcp/cloud`;
    const client = (await registerClient(stack.kw, { redirect_uris: [callback], client_name: "Browser test client" }))
      .body;
    const { verifier, challenge } = pkce();
    const url = authorizeUrl(stack.kw, {
      response_type: "code",
      client_id: client.client_id,
      redirect_uri: callback,
      code_challenge: challenge,
      code_challenge_method: "S256",
      resource,
      state: "browser-state",
    }).replace(stack.kw.url, issuer);

    await page.goto(url);
    // The IdP's login page (another site).
    await page.getByLabel("User name").fill("alice");
    await page.getByRole("button", { name: "Sign in" }).click();
    // Keyward's consent page: the cross-site callback carried the Lax flow cookie.
    await page.getByRole("button", { name: "Approve" }).waitFor({ timeout: STEP_TIMEOUT_MS });
    expect(new URL(page.url()).origin).toBe(issuer);
    expect(await page.getByRole("heading").textContent()).toBe("Allow access to MCP server cloud?");
    const flowCookie = (await context.cookies(`${issuer}/oauth/callback`)).find((c) => c.name === "keyward_oauth");
    expect(flowCookie).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/oauth" });
    await page.getByRole("button", { name: "Approve" }).click();
    await page
      .waitForURL((u) => u.toString().startsWith(callback), { timeout: STEP_TIMEOUT_MS })
      .catch((err: Error) => {
        throw new Error(`${err.message}; at ${page.url()}; CSP: ${cspViolations.join(" | ")}`);
      });
    expect(cspViolations).toEqual([]);

    const back = received.filter((u) => u.pathname === "/callback").at(-1) as URL;
    expect(back.searchParams.get("state")).toBe("browser-state");
    expect(back.searchParams.get("iss")).toBe(issuer);
    const code = back.searchParams.get("code") as string;
    const token = await postForm(`${stack.kw.url}/oauth/token`, {
      grant_type: "authorization_code",
      code,
      redirect_uri: callback,
      client_id: client.client_id,
      code_verifier: verifier,
      resource,
    });
    expect(token.status).toBe(200);
    const mcp = await mcpClient(issuer, "cloud", token.body.access_token);
    try {
      const result = await mcp.callTool({ name: "whoami", arguments: {} });
      expect(textOf(result)).toContain(accountOf(ALICE_CLOUD_KEY));
    } finally {
      await mcp.close();
    }
  });
});
