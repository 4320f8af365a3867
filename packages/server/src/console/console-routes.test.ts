import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConsoleBuild, makeConsoleBuild, rawGet } from "../../test-support/console-build.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { loadConfig } from "../config.js";
import { DEFAULT_CONSOLE_DIR } from "./console-files.js";
import { createConsoleModule } from "./console-module.js";

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

function expectSecurityHeaders(headers: Record<string, string | string[] | undefined>): void {
  expect(headers["content-security-policy"]).toBe(CSP);
  expect(headers["x-content-type-options"]).toBe("nosniff");
  expect(headers["referrer-policy"]).toBe("no-referrer");
  expect(headers["x-frame-options"]).toBe("DENY");
}

describe("the console's build served at /console", () => {
  let build: ConsoleBuild;
  let server: TestServer;
  beforeAll(async () => {
    build = makeConsoleBuild();
    server = await startTestServer({ KEYWARD_CONSOLE_DIR: build.dir });
  });
  afterAll(async () => {
    await server?.close();
    build?.remove();
  });

  it("redirects /console to /console/, keeping the query", async () => {
    const res = await rawGet(server.url, "/console?next=keys");
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe("/console/?next=keys");
    expectSecurityHeaders(res.headers);
  });

  it("answers /console/ with index.html, not cached, under the strict CSP", async () => {
    const res = await fetch(`${server.url}/console/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect(await res.text()).toBe(build.indexHtml);
    expectSecurityHeaders(Object.fromEntries(res.headers));
    expect(res.headers.get("content-security-policy")).not.toContain("unsafe-inline");
  });

  it.each(["/console/keys", "/console/keys/key_123", "/console/audit/?cursor=abc", "/console/agents/"])(
    "answers the app's own page %s with index.html (SPA fallback)",
    async (path) => {
      const res = await fetch(`${server.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(await res.text()).toBe(build.indexHtml);
    },
  );

  it("serves a hashed asset with its type and a long immutable cache", async () => {
    const res = await fetch(`${server.url}/console/assets/index-AbC123.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(await res.text()).toBe(build.script);
    expectSecurityHeaders(Object.fromEntries(res.headers));
    const css = await fetch(`${server.url}/console/assets/index-AbC123.css`);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
  });

  it("serves a root file of the build (not hashed: revalidated)", async () => {
    const res = await fetch(`${server.url}/console/favicon.svg`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/svg+xml");
    expect(res.headers.get("cache-control")).toBe("no-cache");
  });

  it("answers a missing asset 404 with the error body, never index.html (a script must not get HTML)", async () => {
    const res = await fetch(`${server.url}/console/assets/index-Gone99.js`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { code: string; message: string; request_id: string } };
    expect(body.error.code).toBe("not_found");
    expect(body.error.request_id).toBeTruthy();
    expectSecurityHeaders(Object.fromEntries(res.headers));
  });

  it("answers HEAD like GET without a body", async () => {
    const res = await rawGet(server.url, "/console/assets/index-AbC123.js", "HEAD");
    expect(res.status).toBe(200);
    expect(res.headers["content-length"]).toBe(String(Buffer.byteLength(build.script)));
    expect(res.body).toBe("");
  });

  it("refuses other methods 405 with Allow, still under the CSP", async () => {
    const res = await fetch(`${server.url}/console/keys`, { method: "POST" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("method_not_allowed");
    expectSecurityHeaders(Object.fromEntries(res.headers));
  });

  it("needs no session for the static files, while the API they call still does", async () => {
    expect((await fetch(`${server.url}/console/`)).status).toBe(200);
    expect((await fetch(`${server.url}/admin/v1/keys`)).status).toBe(401);
  });

  it("leaves paths that only start like /console to the rest of the server", async () => {
    const res = await fetch(`${server.url}/consoles`);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-security-policy")).toBeNull();
  });
});

describe("a server whose console is not built", () => {
  let empty: string;
  let server: TestServer;
  beforeAll(async () => {
    empty = mkdtempSync(join(tmpdir(), "keyward-console-missing-"));
    server = await startTestServer({ KEYWARD_CONSOLE_DIR: join(empty, "dist") });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(empty, { recursive: true, force: true });
  });

  it("answers a page saying how to build it, and keeps serving the API", async () => {
    const res = await fetch(`${server.url}/console/`);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await res.text()).toContain("npm run build");
    expectSecurityHeaders(Object.fromEntries(res.headers));
    expect((await server.admin("GET", "/agents")).status).toBe(200);
  });
});

describe("where the build is read from", () => {
  it("is the console package's dist beside the server package by default", () => {
    expect(DEFAULT_CONSOLE_DIR.replaceAll("\\", "/")).toMatch(/\/packages\/console\/dist\/?$/);
    const config = loadConfig({ env: {} });
    expect(createConsoleModule({ config: config.console, configDir: "/srv" }).dir).toBe(DEFAULT_CONSOLE_DIR);
  });

  it("is console.dir (or KEYWARD_CONSOLE_DIR), relative to the config's folder", () => {
    const fromEnv = loadConfig({ env: { KEYWARD_CONSOLE_DIR: "ui/dist" } });
    expect(createConsoleModule({ config: fromEnv.console, configDir: "/srv/keyward" }).dir).toBe(
      "/srv/keyward/ui/dist",
    );
    const absolute = loadConfig({ env: { KEYWARD_CONSOLE_DIR: "/opt/console" } });
    expect(createConsoleModule({ config: absolute.console, configDir: "/srv" }).dir).toBe("/opt/console");
  });
});
