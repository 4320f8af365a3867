import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from "../packages/server/test-support/server.js";
import { startUpstream } from "../packages/server/test-support/upstream.js";
import {
  axeProblems,
  builtScriptsGzip,
  CHROMIUM,
  checkPage,
  freshContext,
  HAVE_CHROMIUM,
  launchChromium,
  openNav,
  pageFetch,
  requireBrowserAndBuild,
  ScriptBytes,
  STEP_TIMEOUT_MS,
  signIn,
} from "./console-browser.js";

/**
 * The console as a user meets it (issue 15): a real Keyward serving the real build of
 * packages/console (the root `npm test` builds it first), driven in Debian's chromium through
 * playwright-core. Skipped with a printed reason where chromium is not installed, except in CI
 * (.ci/run installs it), where that is a failure rather than a silent gap.
 */
const mustRun = Boolean(process.env.CI);
if (!HAVE_CHROMIUM && !mustRun) {
  console.warn(`console.e2e.test: skipped, ${CHROMIUM} is not installed (apt-get install chromium)`);
}

const AGENT = "e2e-agent";
const CONSUMER = "e2e-consumer";
const NAV = ["Overview", "Agents", "Consumers", "Keys", "Credentials", "Users", "Audit", "Alerts", "Admin tokens"];

/** Issue 15: first page interactive within 1 s from localhost (measured ~0.2–0.4 s on a loaded 2-core box). */
const INTERACTIVE_BUDGET_MS = 1000;

type Upstream = Awaited<ReturnType<typeof startUpstream>>;

describe.skipIf(!HAVE_CHROMIUM && !mustRun)("the web console in a real browser", () => {
  let server: TestServer;
  let upstream: Upstream;
  let browser: Browser;
  let owner: BrowserContext;
  let page: Page;
  const cspViolations: string[] = [];
  let secret = "";
  let keyId = "";
  let configDir = "";

  const watch = (p: Page) => {
    p.on("console", (msg) => {
      if (msg.text().includes("Content Security Policy")) cspViolations.push(msg.text());
    });
    p.on("pageerror", (err) => cspViolations.push(`page error: ${err.message}`));
  };

  beforeAll(async () => {
    requireBrowserAndBuild();
    upstream = await startUpstream();
    // Usage counters are flushed off the request path; a short interval lets the chart show a call soon.
    configDir = mkdtempSync(join(tmpdir(), "keyward-console-e2e-"));
    writeFileSync(join(configDir, "keyward.yaml"), "usage:\n  flush_interval_ms: 100\n");
    server = await startTestServer({}, { configFile: join(configDir, "keyward.yaml") });
    browser = await launchChromium();
    owner = await freshContext(browser);
    await owner.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
    page = await owner.newPage();
    watch(page);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await upstream?.close();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  it("loads the sign-in page fast, with little JavaScript, under the strict CSP", async () => {
    const scripts = new ScriptBytes();
    const recorded: Array<Promise<void>> = [];
    page.on("response", (res) => recorded.push(scripts.record(res)));
    const response = await page.goto(`${server.url}/console/`);
    // Interactive: the field is there, enabled and takes input. performance.now() counts from the
    // navigation's start on the page's own clock, read after the check (so a little over, never under).
    const field = page.getByLabel("Admin token");
    await field.waitFor();
    expect(await field.isEditable()).toBe(true);
    const firstLoadMs = await page.evaluate(() => performance.now());
    await Promise.all(recorded);
    page.removeAllListeners("response");

    expect(response?.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(response?.headers()["content-security-policy"]).not.toContain("unsafe-inline");
    expect(scripts.seen.size).toBeGreaterThan(0);
    expect(scripts.totalGzip).toBeLessThanOrEqual(250 * 1024);
    console.info(
      `console first load: sign-in field usable ${firstLoadMs.toFixed(0)} ms after navigation start; ` +
        `first-load JS ${(scripts.totalGzip / 1024).toFixed(1)} KB gzipped in ${scripts.seen.size} file(s); ` +
        `all built JS ${(builtScriptsGzip() / 1024).toFixed(1)} KB gzipped`,
    );
    expect(firstLoadMs).toBeLessThanOrEqual(INTERACTIVE_BUDGET_MS);
    await checkPage(page, "sign-in");
  });

  it("signs in into an HttpOnly SameSite=Strict session, keeping no token in storage", async () => {
    await page.getByLabel("Admin token").fill(TEST_ADMIN_TOKEN);
    const clicked = await page.evaluate(() => performance.now());
    await page.getByRole("button", { name: "Sign in" }).click();
    // Rendered: the heading, the open alerts counted, and both top tables answered (no traffic yet).
    await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
    await page.getByText(/Open alerts: \d/).waitFor();
    await page.getByText("No traffic in the last 24 hours.").nth(1).waitFor();
    const overviewMs = (await page.evaluate(() => performance.now())) - clicked;
    console.info(`console sign-in: overview rendered ${overviewMs.toFixed(0)} ms after the click on Sign in`);
    expect(overviewMs).toBeLessThanOrEqual(INTERACTIVE_BUDGET_MS);

    const cookies = await owner.cookies(server.url);
    expect(cookies.length).toBeGreaterThan(0);
    for (const c of cookies) {
      expect(c.httpOnly).toBe(true);
      expect(c.sameSite).toBe("Strict");
    }
    // A string: evaluated in the page, whose globals this file's (non-DOM) types do not know.
    const stored = await page.evaluate("JSON.stringify([{ ...localStorage }, { ...sessionStorage }, document.cookie])");
    expect(stored).not.toContain(TEST_ADMIN_TOKEN);
    for (const name of NAV) {
      await expect(page.getByRole("navigation").getByRole("link", { name, exact: true }).count()).resolves.toBe(1);
    }
  });

  it("has every page pass axe-core, each with its heading", async () => {
    for (const name of NAV) {
      await openNav(page, name);
      await checkPage(page, name.toLowerCase().replace(" ", "-"));
    }
  });

  it("has axe-core report a real violation, so that its silence on the pages means something", async () => {
    const context = await browser.newContext();
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    const probe = await context.newPage();
    await probe.goto(`${server.url}/console/`);
    await probe.getByLabel("Admin token").waitFor();
    await probe.evaluate("document.body.appendChild(document.createElement('button'))");
    expect((await axeProblems(probe)).join("\n")).toMatch(/critical button-name/);
    await context.close();
  });

  it("creates an agent, a consumer and a key, and shows the key's secret once", async () => {
    await openNav(page, "Agents");
    await page.getByRole("button", { name: "New agent" }).click();
    const agentForm = page.getByRole("dialog");
    await agentForm.getByLabel("Name").fill(AGENT);
    await agentForm.getByLabel("Upstream URL").fill(upstream.url);
    await agentForm.getByRole("button", { name: "Create" }).click();
    await page.getByRole("cell", { name: AGENT, exact: true }).waitFor();

    await openNav(page, "Consumers");
    await page.getByRole("button", { name: "New consumer" }).click();
    await page.getByRole("dialog").getByLabel("Name").fill(CONSUMER);
    await page.getByRole("dialog").getByRole("button", { name: "Create" }).click();
    await page.getByRole("cell", { name: CONSUMER, exact: true }).waitFor();

    await openNav(page, "Keys");
    await page.getByRole("button", { name: "New key" }).click();
    const keyForm = page.getByRole("dialog");
    await keyForm.getByLabel("Owner").fill(`consumer:${CONSUMER}`);
    await keyForm.getByLabel("Scopes").fill(`agent:${AGENT}, read:e2e`);
    await keyForm.getByLabel("Rate limit", { exact: true }).fill("600");
    await keyForm.getByLabel("Quota", { exact: true }).fill("100000");
    await checkPage(page, "new-key-form");
    await keyForm.getByRole("button", { name: "Create" }).click();

    const shown = page.getByRole("dialog");
    await shown.getByText("shown once").waitFor();
    secret = ((await shown.locator("code").textContent()) ?? "").trim();
    expect(secret).toMatch(/^kwk_/);
    await shown.getByRole("button", { name: "Copy" }).click();
    await shown.getByText("Copied").waitFor();
    expect(await page.evaluate("navigator.clipboard.readText()")).toBe(secret);
    await checkPage(page, "key-secret-shown-once");
    await shown.getByRole("button", { name: "Done" }).click();
    await shown.waitFor({ state: "detached" });
    expect(await page.content()).not.toContain(secret);

    const listed = await server.admin("GET", `/keys?owner=consumer:${CONSUMER}`);
    expect(listed.body.items).toHaveLength(1);
    keyId = listed.body.items[0].id as string;
    expect(listed.body.items[0]).toMatchObject({
      rate_limit: { limit: 600, window_s: 60 },
      quota: { limit: 100000, period: "month" },
    });
    await page.getByRole("cell", { name: keyId }).waitFor();
  });

  it("sets a credential with egress settings and grants it to the agent, never showing its value", async () => {
    const value = "e2e-credential-canary-value";
    await openNav(page, "Credentials");
    await page.getByRole("button", { name: "Set credential" }).click();
    const form = page.getByRole("dialog");
    await form.getByLabel("Name", { exact: true }).fill("e2e-cred");
    await form.getByLabel("Value", { exact: true }).fill(value);
    await form.getByLabel("Egress base URL").fill(upstream.url);
    await form.getByLabel("Header", { exact: true }).fill("X-Api-Key");
    await checkPage(page, "set-credential-form");
    await form.getByRole("button", { name: "Save" }).click();
    await form.waitFor({ state: "detached" });
    await page.getByRole("link", { name: "e2e-cred", exact: true }).click();
    await page.getByRole("heading", { level: 1, name: "Credential e2e-cred" }).waitFor();
    await page.getByText("X-Api-Key: {value}").waitFor();
    await checkPage(page, "credential-detail");
    expect(await page.content()).not.toContain(value);

    await openNav(page, "Agents");
    await page.getByRole("link", { name: AGENT, exact: true }).click();
    await page.getByRole("button", { name: "Edit grants" }).click();
    const grants = page.getByRole("dialog");
    await grants.getByRole("button", { name: "Add credential" }).click();
    await grants.getByLabel("Credential 1 name").fill("e2e-cred");
    await checkPage(page, "grants-form");
    await grants.getByRole("button", { name: "Save" }).click();
    await grants.waitFor({ state: "detached" });
    await page.getByRole("link", { name: "e2e-cred", exact: true }).waitFor();
    await checkPage(page, "agent-detail");
    expect((await server.admin("GET", `/agents/${AGENT}/grants`)).body.credentials).toEqual([
      { name: "e2e-cred", mode: "inject" },
    ]);
  });

  it("lets the secret call the gateway; after Revoke in the UI the next call is denied and shows in Audit", async () => {
    const call = () => fetch(`${server.url}/agents/${AGENT}/echo`, { headers: { authorization: `Bearer ${secret}` } });
    const ok = await call();
    expect(ok.status).toBe(200);
    expect(upstream.seen.at(-1)?.url).toBe("/echo");

    // The call on the key's usage chart, once the counters are flushed.
    const allowed = async () =>
      ((await server.admin("GET", `/keys/${keyId}/usage?step=1h`)).body.items as Array<{ allowed: number }>).reduce(
        (sum, b) => sum + b.allowed,
        0,
      );
    await expect.poll(allowed, { timeout: 10_000 }).toBe(1);
    await openNav(page, "Keys");
    await page.getByRole("link", { name: keyId }).click();
    await page.getByText(/Requests, last 24 hours: 1 allowed, 0 denied/).waitFor();
    await checkPage(page, "key-detail");
    await openNav(page, "Keys");

    const row = page.getByRole("row").filter({ has: page.getByRole("cell", { name: keyId }) });
    await row.getByRole("button", { name: "Revoke" }).click();
    // Revoking asks first, in a dialog naming the key.
    const confirm = page.getByRole("dialog", { name: `Revoke key ${keyId}?` });
    await checkPage(page, "revoke-confirmation");
    await confirm.getByRole("button", { name: "Revoke" }).click();
    await confirm.waitFor({ state: "detached" });
    await row.getByText("revoked").waitFor();

    const denied = await call();
    expect(denied.status).toBe(401);
    expect(((await denied.json()) as { error: { code: string } }).error.code).toBe("key_revoked");

    // The audit log is written off the request path: wait for the record, then look for it.
    await expect
      .poll(async () => (await server.admin("GET", "/audit?action=gateway.deny")).body.events.length, {
        timeout: 10_000,
      })
      .toBeGreaterThan(0);
    await openNav(page, "Audit");
    const denial = page.getByRole("row").filter({ hasText: "gateway.deny" }).filter({ hasText: "key_revoked" });
    await denial.first().waitFor();
    await checkPage(page, "audit-with-denial");
  });

  it("stays signed in on the same page across a reload, and still makes changes (its CSRF token restored)", async () => {
    await openNav(page, "Consumers");
    const url = page.url();
    await page.reload();
    await page.getByRole("heading", { level: 1, name: "Consumers" }).waitFor();
    await page.getByRole("cell", { name: CONSUMER, exact: true }).waitFor();
    expect(page.url()).toBe(url);
    expect(await page.getByLabel("Admin token").count()).toBe(0);
    // A change needs the CSRF token, which the reload lost and GET /admin/v1/sessions/current gave back.
    await page.getByRole("button", { name: "New consumer" }).click();
    await page.getByRole("dialog").getByLabel("Name").fill("e2e-after-reload");
    await page.getByRole("dialog").getByRole("button", { name: "Create" }).click();
    await page.getByRole("cell", { name: "e2e-after-reload", exact: true }).waitFor();
    expect((await server.admin("GET", "/consumers/e2e-after-reload")).status).toBe(200);
    expect(await page.evaluate("JSON.stringify([{ ...localStorage }, { ...sessionStorage }])")).toBe("[{},{}]");
  });

  it("refuses a change without the CSRF header, and any call without a session", async () => {
    const spare = await server.admin("POST", "/keys", { owner: `consumer:${CONSUMER}`, scopes: [`agent:${AGENT}`] });
    expect(spare.status).toBe(201);
    const forged = await pageFetch(page, `/admin/v1/keys/${spare.body.key.id}/revoke`, { method: "POST" });
    expect(forged.status).toBe(403);
    expect((await server.admin("GET", `/keys/${spare.body.key.id}`)).body.status).toBe("active");

    const stranger = await browser.newContext();
    stranger.setDefaultTimeout(STEP_TIMEOUT_MS);
    const anon = await stranger.newPage();
    await anon.goto(`${server.url}/console/keys`);
    await anon.getByLabel("Admin token").waitFor();
    expect(await pageFetch(anon, "/admin/v1/keys")).toEqual({ status: 401, code: expect.any(String) });
    await stranger.close();
  });

  it("shows a viewer no change buttons, and the server refuses its changes anyway", async () => {
    const created = await server.admin("POST", "/admin-tokens", { name: "e2e-viewer", role: "viewer" });
    expect(created.status).toBe(201);
    const viewerSecret = created.body.secret as string;
    const active = (await server.admin("GET", `/keys?owner=consumer:${CONSUMER}`)).body.items.find(
      (k: { status: string }) => k.status === "active",
    );

    const context = await browser.newContext();
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    const viewer = await context.newPage();
    watch(viewer);
    await viewer.goto(`${server.url}/console/`);
    await signIn(viewer, viewerSecret);
    await openNav(viewer, "Keys");
    await viewer.getByRole("cell", { name: active.id }).waitFor();
    expect(await viewer.getByRole("button", { name: "New key" }).count()).toBe(0);
    expect(await viewer.getByRole("button", { name: "Revoke" }).count()).toBe(0);
    expect(await viewer.getByRole("navigation").getByRole("link", { name: "Admin tokens" }).count()).toBe(0);
    await checkPage(viewer, "keys-as-viewer");

    const forged = await pageFetch(viewer, `/admin/v1/keys/${active.id}/revoke`, { method: "POST" });
    expect(forged.status).toBe(403);
    // Even with its session's own CSRF token, a viewer may not change anything.
    const csrf = await viewer.evaluate(async (token) => {
      const res = await fetch("/admin/v1/sessions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token }),
      });
      return ((await res.json()) as { csrf_token: string }).csrf_token;
    }, viewerSecret);
    const withCsrf = await pageFetch(viewer, `/admin/v1/keys/${active.id}/revoke`, {
      method: "POST",
      headers: { "x-csrf-token": csrf },
    });
    expect(withCsrf).toEqual({ status: 403, code: "forbidden" });
    expect((await server.admin("GET", `/keys/${active.id}`)).body.status).toBe("active");
    await context.close();
  });

  it("signs out: back to sign-in, also after a reload, and the session no longer answers", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Admin token").waitFor();
    await page.reload();
    await page.getByLabel("Admin token").waitFor();
    expect(await page.getByRole("navigation").count()).toBe(0);
    expect(await pageFetch(page, "/admin/v1/keys")).toEqual({ status: 401, code: expect.any(String) });
    expect(await pageFetch(page, "/admin/v1/sessions/current")).toEqual({ status: 401, code: "unauthorized" });
    expect(cspViolations).toEqual([]);
  });
});
