import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";

/**
 * The gateway and forward-auth refuse, before any check or token, every path an upstream (or the
 * proxy asking `/v1/verify`) could resolve outside the agent: the same rules as egress
 * (`http/path-safety.ts`). The gateway used to refuse only plain and `%2e` dot segments and
 * forwarded `..;`, `%252e%252e`, backslashes, `%c0%ae` and `//`.
 */

let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;
let secret: string;

beforeAll(async () => {
  up = await startUpstream();
  kw = await startTestServer();
  expect((await kw.admin("POST", "/agents", { name: "alpha", upstream: `${up.url}/base` })).status).toBe(201);
  expect((await kw.admin("POST", "/agents", { name: "beta", upstream: `${up.url}/beta` })).status).toBe(201);
  expect((await kw.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
  const key = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:alpha"] });
  expect(key.status).toBe(201);
  secret = key.body.secret;
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
});

/** node:http sends the path exactly as given (fetch would normalize dot segments first). */
function call(
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(kw.url);
    const req = http.request({ hostname, port, path, headers, agent: false }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

const ESCAPES = [
  "/..;/secret",
  "/a/..;jsessionid=1/../secret",
  "/%252e%252e/secret",
  "/%25252e%25252e/secret",
  "/%2525252e%2525252e/secret",
  "/%252E%252e/secret",
  "/..%3b/secret",
  "/..%2fsecret",
  "/%c0%ae%c0%ae/secret",
  "/%e0%80%ae%e0%80%ae/secret",
  "/%ef%bc%8e%ef%bc%8e/secret",
  "/a\\..\\..\\secret",
  "/%5c..%5csecret",
  "//evil.example/x",
  "/%2f%2fevil.example/x",
  "/x%0d%0aHost:%20evil",
  "/x%00",
];

describe("gateway: paths that could leave the agent's upstream base", () => {
  it.each(ESCAPES)("refuses /agents/alpha%s with 400 invalid_request, forwarding nothing", async (rest) => {
    const before = up.seen.length;
    const res = await call(`/agents/alpha${rest}`, { "x-api-key": secret });
    expect(res.status).toBe(400);
    const body = JSON.parse(res.body);
    expect(body.error.code).toBe("invalid_request");
    expect(body.error.request_id).toBe(res.headers["x-request-id"]);
    expect(up.seen.length).toBe(before);
  });

  it("still forwards @, :, ;, %20, an encoded slash inside a segment and dots inside names", async () => {
    const rest = "/users/@me/a:b;v=1/x%20y/group%2Fproject/a.b..c/";
    const res = await call(`/agents/alpha${rest}`, { "x-api-key": secret });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).url).toBe(`/base${rest}`);
  });
});

describe("forward-auth: original URIs a proxy could route to another agent", () => {
  const verify = (uri: Record<string, string>) => call("/v1/verify", { "x-api-key": secret, ...uri });

  it.each([
    "/agents/alpha/../beta/x",
    "/agents/alpha/%2e%2e/beta/x",
    "/agents/alpha/%2E%2E/beta/x",
    "/agents/alpha/.%2e/beta/x",
    "/agents/alpha/..;/beta/x",
    "/agents/alpha/%252e%252e/beta/x",
    "/agents/alpha/%c0%ae%c0%ae/beta/x",
    "/agents/alpha/%5c..%5cbeta/x",
    "/agents/alpha//../beta/x",
    "/agents/alpha%2f..%2fbeta/x",
    "/agents/%61lpha/x",
    "/agents/Alpha/x",
    "/agents/alpha%20/x",
    "/agents/../agents/alpha/x",
    "/agents/alpha/x#frag",
    "/agents/alpha/x y",
  ])("refuses %s with 400 invalid_request and X-Keyward-Code", async (uri) => {
    for (const header of ["x-original-uri", "x-forwarded-uri"]) {
      const res = await verify({ [header]: uri });
      expect({ header, status: res.status }).toEqual({ header, status: 400 });
      expect(res.headers["x-keyward-code"]).toBe("invalid_request");
      expect(res.headers.authorization).toBeUndefined();
      expect(JSON.parse(res.body).error).toMatchObject({ code: "invalid_request", request_id: expect.any(String) });
    }
  });

  it("refuses X-Forwarded-Uri and X-Original-URI that name different URIs", async () => {
    const res = await verify({ "x-original-uri": "/agents/beta/x", "x-forwarded-uri": "/agents/alpha/x" });
    expect(res.status).toBe(400);
    expect(res.headers["x-keyward-code"]).toBe("invalid_request");
    const same = await verify({ "x-original-uri": "/agents/alpha/x?q=1", "x-forwarded-uri": "/agents/alpha/x?q=1" });
    expect(same.status).toBe(200);
  });

  it("answers an ordinary URI as before, with the query ignored", async () => {
    const res = await verify({ "x-original-uri": "/agents/alpha/users/@me/a.b?next=../x" });
    expect(res.status).toBe(200);
    expect(res.headers.authorization).toMatch(/^Bearer ey/);
    const beta = await verify({ "x-original-uri": "/agents/beta/x" });
    expect(beta.status).toBe(403);
    expect(beta.headers["x-keyward-code"]).toBe("scope_denied");
  });
});
