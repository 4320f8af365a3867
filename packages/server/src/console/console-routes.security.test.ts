import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConsoleBuild, makeConsoleBuild, rawGet } from "../../test-support/console-build.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";

// Every way out of the build folder that some reader of a path accepts: raw and encoded dot
// segments, double encoding, `..;`, backslashes, overlong UTF-8, fullwidth dots, NUL. The one
// path check (http/path-safety.ts) refuses them all before any file is opened.
const ESCAPES = [
  "/console/../outside.txt",
  "/console/../../etc/passwd",
  "/console/assets/../../outside.txt",
  "/console/%2e%2e/outside.txt",
  "/console/%2E%2E/outside.txt",
  "/console/..%2foutside.txt",
  "/console/assets/..%2f..%2foutside.txt",
  "/console/%252e%252e/outside.txt",
  "/console/%25252e%25252e%252foutside.txt",
  "/console/..;/outside.txt",
  "/console/..%5coutside.txt",
  "/console/%5c..%5coutside.txt",
  "/console/%c0%ae%c0%ae/outside.txt",
  "/console/%ef%bc%8e%ef%bc%8e/outside.txt",
  "/console/index.html%00.js",
  "/console//etc/passwd",
  "/console/%2f%2fetc/passwd",
];

describe("console paths cannot leave the build folder", () => {
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

  it.each(ESCAPES)("%s → 400 invalid_request, under the CSP, nothing read", async (path) => {
    const res = await rawGet(server.url, path);
    expect(res.status).toBe(400);
    const body = JSON.parse(res.body) as { error: { code: string; message: string; request_id: string } };
    expect(body.error.code).toBe("invalid_request");
    expect(body.error.message).toMatch(/path/);
    expect(res.body).not.toContain(build.outsideText);
    expect(res.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
  });

  it("still serves a name with dots inside it and an encoded character", async () => {
    const res = await rawGet(server.url, "/console/assets/index-AbC123%2Ejs");
    expect(res.status).toBe(200);
    expect(res.body).toBe(build.script);
  });
});
