import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentWithKey, egressCall, grant, putCredential } from "../../test-support/egress/agents.js";
import { leakForms, rawRequest, startEgressUpstream, startTrap } from "../../test-support/egress/upstreams.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { type ApiErrorBody, readJson } from "../../test-support/wire.js";

const SECRET = "sk-sec-Jq8vN2xR5tL0wZ3mK7pB4yH1cF6dG9sAe";

let kw: TestServer;
let up: Awaited<ReturnType<typeof startEgressUpstream>>;
let trap: Awaited<ReturnType<typeof startTrap>>;
let key: string;

beforeAll(async () => {
  up = await startEgressUpstream();
  trap = await startTrap();
  kw = await startTestServer();
  key = await agentWithKey(kw, "bot");
  await putCredential(kw, "api", SECRET, { base_url: `${up.url}/api/v1` });
  await putCredential(kw, "keyed", "keyed-secret-0123456789", { base_url: up.url, header: "X-API-Key" });
  await grant(kw, "bot", [
    { name: "api", mode: "inject" },
    { name: "keyed", mode: "inject" },
  ]);
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
  await trap?.close();
});

/** node:http sends the path exactly as given (fetch would normalize dot segments first). */
function call(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(kw.url);
    const req = http.request(
      { hostname, port, path, headers: { authorization: `Bearer ${key}`, ...headers }, agent: false },
      (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Everything the upstream was asked for stayed under base_url's path. */
function upstreamStayedUnderBase(): void {
  for (const s of up.seen) {
    if (s.headers.authorization === `Bearer ${SECRET}`) expect(s.url, s.url).toMatch(/^\/api\/v1(\/|\?|$)/);
  }
}

const T = () => trap.host;
const ESCAPES: Array<[string, () => string, number]> = [
  ["dot-dot", () => "/egress/api/../admin", 400],
  ["dot-dot at the end", () => "/egress/api/x/..", 400],
  ["deep dot-dot", () => "/egress/api/a/../../../admin", 400],
  ["encoded dot-dot", () => "/egress/api/%2e%2e/admin", 400],
  ["upper-case encoded dot-dot", () => "/egress/api/%2E%2E/admin", 400],
  ["half-encoded dot-dot", () => "/egress/api/.%2e/admin", 400],
  ["double-encoded dot-dot", () => "/egress/api/%252e%252e/admin", 400],
  ["triple-encoded dot-dot", () => "/egress/api/%25252e%25252e/admin", 400],
  ["encoded slash after dot-dot", () => "/egress/api/..%2fadmin", 400],
  ["encoded slashes around dot-dots", () => "/egress/api/x%2F..%2F..%2Fadmin", 400],
  ["Tomcat path parameter", () => "/egress/api/..;/admin", 400],
  ["encoded path parameter", () => "/egress/api/..%3B/admin", 400],
  ["single dot", () => "/egress/api/./admin", 400],
  ["encoded single dot", () => "/egress/api/%2e/admin", 400],
  ["backslash", () => "/egress/api/..\\admin", 400],
  ["encoded backslash", () => "/egress/api/%5c..%5cadmin", 400],
  ["overlong UTF-8 dots", () => "/egress/api/%c0%ae%c0%ae/admin", 400],
  ["fullwidth dots", () => "/egress/api/%ef%bc%8e%ef%bc%8e/admin", 400],
  ["IIS %u escapes", () => "/egress/api/%u002e%u002e/admin", 400],
  ["scheme-relative path", () => `/egress/api//${T()}/steal`, 400],
  ["encoded scheme-relative path", () => `/egress/api/%2f%2f${T()}/steal`, 400],
  ["absolute URL in the path", () => `/egress/api/http://${T()}/steal`, 400],
  ["encoded absolute URL in the path", () => `/egress/api/http:%2F%2F${T()}%2Fsteal`, 400],
  ["CR LF header injection", () => `/egress/api/x%0d%0aHost:%20${T()}`, 400],
  ["encoded LF", () => "/egress/api/x%0aX-Evil:%201", 400],
  ["NUL", () => "/egress/api/x%00.json", 400],
  ["tab", () => "/egress/api/x%09y", 400],
  ["fragment", () => `/egress/api/x#@${T()}`, 400],
  ["bad escape", () => "/egress/api/%zz", 400],
  ["userinfo in the credential segment", () => `/egress/api@${T()}/steal`, 403],
  ["encoded traversal in the credential name", () => "/egress/%2e%2e/admin", 403],
  ["credential name with an encoded slash", () => "/egress/api%2f..%2fother/x", 403],
  ["undecodable credential name", () => "/egress/%ff%fe/x", 403],
];

describe("egress: no way to another host or above base_url", () => {
  it.each(ESCAPES)("%s is refused", async (_name, path, status) => {
    const before = up.seen.length;
    const res = await call(path());
    expect(res.status, res.body).toBe(status);
    expect(JSON.parse(res.body).error.code).toBe(status === 400 ? "invalid_request" : "credential_not_granted");
    expect(up.seen.length).toBe(before);
    expect(trap.hits).toEqual([]);
  });

  it("an @ in the path stays a path on the credential's host", async () => {
    const res = await call(`/egress/api/@${T()}/steal`);
    expect(res.status).toBe(200);
    expect(up.seen.at(-1)!.url).toBe(`/api/v1/@${T()}/steal`);
    expect(trap.hits).toEqual([]);
  });

  it("a request in absolute form names another host in vain", async () => {
    const answer = await rawRequest(
      kw.url,
      `GET http://${T()}/egress/api/x HTTP/1.1\r\nhost: ${T()}\r\nauthorization: Bearer ${key}\r\nconnection: close\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 404/);
    expect(trap.hits).toEqual([]);
  });

  it("a Host header naming another host changes nothing", async () => {
    const res = await call("/egress/api/models", { host: T() });
    expect(res.status).toBe(200);
    expect(up.seen.at(-1)!.headers.host).toBe(up.host);
    expect(trap.hits).toEqual([]);
  });

  it("dot-dots in the query are data, not a path", async () => {
    const res = await call("/egress/api/files?next=../../admin&u=%2e%2e%2f");
    expect(res.status).toBe(200);
    expect(up.seen.at(-1)!.url).toBe("/api/v1/files?next=../../admin&u=%2e%2e%2f");
  });

  it("no request ever left base_url's path with the secret", () => {
    upstreamStayedUnderBase();
  });
});

describe("egress: the agent's own credential never reaches the upstream", () => {
  it.each([
    ["Authorization: Bearer", (k: string) => ({ authorization: `Bearer ${k}` })],
    ["X-API-Key", (k: string) => ({ "x-api-key": k })],
  ])("presented as %s, replaced by the injected secret", async (_name, headers) => {
    for (const cred of ["api", "keyed"]) {
      const res = await call(`/egress/${cred}/whoami`, headers(key) as Record<string, string>);
      expect(res.status).toBe(200);
      const seen = up.seen.at(-1)!;
      expect(JSON.stringify(seen.headers)).not.toContain(key);
      expect(JSON.stringify(seen.headers)).not.toContain("kwk_");
      if (cred === "keyed") {
        expect(seen.headers["x-api-key"]).toBe("keyed-secret-0123456789");
        expect(seen.headers.authorization).toBeUndefined();
      } else expect(seen.headers.authorization).toBe(`Bearer ${SECRET}`);
    }
  });

  it("a Connection header cannot remove the injected header or smuggle the agent's key", async () => {
    const res = await call("/egress/keyed/x", { "x-api-key": key, connection: "x-api-key, authorization" });
    expect(res.status).toBe(200);
    expect(up.seen.at(-1)!.headers["x-api-key"]).toBe("keyed-secret-0123456789");
  });
});

describe("egress: the secret never reaches the agent", () => {
  it("is in no byte of the raw answer, in any encoding", async () => {
    for (const path of ["leak", "gzip-leak", "models", "sse-less", "empty", "big"]) {
      const raw = await rawRequest(
        kw.url,
        `GET /egress/api/${path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\nconnection: close\r\n\r\n`,
      );
      const decoded = dechunk(raw);
      for (const [form, value] of Object.entries(leakForms(SECRET))) {
        expect(raw, `${path} ${form}`).not.toContain(value);
        expect(decoded, `${path} ${form}`).not.toContain(value);
      }
    }
  });

  it("is not in the audit log in any encoding", async () => {
    const audit = await kw.admin("GET", "/audit?limit=1000");
    const text = JSON.stringify(audit.body);
    expect(text).toContain("credential.inject");
    for (const value of Object.values(leakForms(SECRET))) expect(text).not.toContain(value);
  });

  it("an agent granted nothing learns nothing: ungranted and unknown names answer alike", async () => {
    const other = await agentWithKey(kw, "other");
    const a = await egressCall(kw, other, "api/leak");
    const b = await egressCall(kw, other, "does-not-exist/leak");
    expect([a.status, b.status]).toEqual([403, 403]);
    const [ja, jb] = [await readJson<ApiErrorBody>(a), await readJson<ApiErrorBody>(b)];
    expect(ja.error.message.replace("api", "N")).toBe(jb.error.message.replace("does-not-exist", "N"));
  });
});

/** The body of a raw HTTP/1.1 answer with its chunked framing removed. */
function dechunk(raw: string): string {
  const at = raw.indexOf("\r\n\r\n");
  const head = raw.slice(0, at).toLowerCase();
  let body = raw.slice(at + 4);
  if (!head.includes("transfer-encoding: chunked")) return body;
  let out = "";
  while (body.length > 0) {
    const eol = body.indexOf("\r\n");
    const size = Number.parseInt(body.slice(0, eol), 16);
    if (!size) break;
    out += body.slice(eol + 2, eol + 2 + size);
    body = body.slice(eol + 2 + size + 2);
  }
  return out;
}
