import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { type Browser, type BrowserContext, chromium, type Page, type Response } from "playwright-core";
import { expect } from "vitest";

/** Helpers of the console's browser test: the browser, axe-core, screenshots, sizes. */

export const CHROMIUM = "/usr/bin/chromium";
export const HAVE_CHROMIUM = existsSync(CHROMIUM);

const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const CONSOLE_DIST = join(ROOT, "packages/console/dist");
const AXE_SOURCE = join(ROOT, "node_modules/axe-core/axe.min.js");
const SHOTS = join(ROOT, "test/.artifacts/console");

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown[] }>;
}

/**
 * axe-core on the page as it is now: the serious and critical violations, each as a line naming
 * the rule and the first elements. Evaluated through the DevTools protocol rather than added as
 * an inline <script> (page.addScriptTag), which the console's CSP rightly refuses; so the test
 * runs under the CSP users get, with no bypassCSP.
 */
export async function axeProblems(page: Page): Promise<string[]> {
  await page.evaluate(readFileSync(AXE_SOURCE, "utf8"));
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run();
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes }));
  });
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => JSON.stringify(n.target)).slice(0, 3)})`);
}

/** axe-core must find nothing serious or critical; a screenshot of the page is kept either way. */
export async function checkPage(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  expect(await axeProblems(page), `axe-core on ${name}`).toEqual([]);
}

/** The JavaScript the browser downloaded, gzipped as a server would send it. */
export class ScriptBytes {
  readonly seen = new Map<string, number>();

  async record(res: Response): Promise<void> {
    const type = res.headers()["content-type"] ?? "";
    if (!type.includes("javascript") || this.seen.has(res.url())) return;
    this.seen.set(res.url(), gzipSync(await res.body()).length);
  }

  get totalGzip(): number {
    return [...this.seen.values()].reduce((a, b) => a + b, 0);
  }
}

/** Every script the build emitted, gzipped: what a user could download in all. */
export function builtScriptsGzip(): number {
  const assets = join(CONSOLE_DIST, "assets");
  return readdirSync(assets)
    .filter((f) => f.endsWith(".js"))
    .reduce((total, f) => total + gzipSync(readFileSync(join(assets, f))).length, 0);
}

/** A step that waits longer than this fails with Playwright's message naming what it waited for. */
export const STEP_TIMEOUT_MS = 10_000;

export const PHONE = { width: 390, height: 844 } as const;
export const DESKTOP = { width: 1280, height: 900 } as const;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}

/** A fresh browser profile (no cookies, no cache) with the step timeout. */
export async function freshContext(
  browser: Browser,
  viewport: { width: number; height: number } = DESKTOP,
): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  return context;
}

/** Throws, naming what is missing, when the browser or the built console is not there. */
export function requireBrowserAndBuild(): void {
  if (!HAVE_CHROMIUM) throw new Error(`${CHROMIUM} is required when CI is set (apt-get install chromium)`);
  if (!existsSync(join(CONSOLE_DIST, "index.html"))) {
    throw new Error(`${CONSOLE_DIST}/index.html is missing: run \`npm run build\` first (npm test does)`);
  }
}

export async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel("Admin token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

export async function openNav(page: Page, name: string): Promise<void> {
  await page.getByRole("navigation").getByRole("link", { name, exact: true }).click();
  await page.getByRole("heading", { level: 1, name }).waitFor();
}

/** Status and error code of a fetch made by the page itself, with its cookies. */
export async function pageFetch(
  page: Page,
  path: string,
  init: { method?: string; headers?: Record<string, string> } = {},
) {
  return page.evaluate(
    async ([p, i]) => {
      const res = await fetch(p, { ...i, credentials: "same-origin" });
      const body = (await res.json().catch(() => null)) as { error?: { code?: string } } | null;
      return { status: res.status, code: body?.error?.code };
    },
    [path, init] as const,
  );
}

/** A screenshot only (no axe run), for the per-width set of every page. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}
