import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from "../../test-support/server.js";

/**
 * The admin API's error paths (SPEC §3): every bad request answers the one error body with a
 * stable code, never a 500, and leaves nothing behind — the full state read back through the API
 * is unchanged after each one.
 */

let kw: TestServer;
let keyId: string;
let baseline: string;

const MIB = 1024 * 1024;
const JSON_TYPE = "application/json";

interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

async function send(
  method: string,
  path: string,
  opts: { body?: string | Buffer; headers?: Record<string, string>; auth?: string | null } = {},
): Promise<Reply> {
  const auth = opts.auth === undefined ? `Bearer ${TEST_ADMIN_TOKEN}` : opts.auth;
  const res = await fetch(`${kw.url}/admin/v1${path}`, {
    method,
    headers: {
      ...(auth !== null ? { authorization: auth } : {}),
      ...(opts.body !== undefined ? { "content-type": JSON_TYPE } : {}),
      ...opts.headers,
    },
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Asserts the one error body of SPEC §4, with the request id also in X-Request-Id. */
function expectError(r: Reply, status: number, code: string): { code: string; message: string; request_id: string } {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get("content-type")).toMatch(/^application\/json/);
  const body = JSON.parse(r.text) as { error: { code: string; message: string; request_id: string } };
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "request_id"]);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(body.error.request_id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  expect(r.headers.get("x-request-id")).toBe(body.error.request_id);
  return body.error;
}

/** Everything the admin API can show, as one string: any partial write changes it. */
async function snapshot(): Promise<string> {
  const read = async (path: string) => {
    const r = await send("GET", path);
    expect(r.status, r.text).toBe(200);
    return JSON.parse(r.text) as unknown;
  };
  const agents = (await read("/agents?limit=1000")) as { items: { name: string }[] };
  const consumers = (await read("/consumers?limit=1000")) as { items: { name: string }[] };
  const keys = (await read("/keys?limit=1000")) as { items: { id: string }[] };
  const singles = [
    ...(await Promise.all(agents.items.map((a) => read(`/agents/${a.name}`)))),
    ...(await Promise.all(consumers.items.map((c) => read(`/consumers/${c.name}`)))),
    ...(await Promise.all(keys.items.map((k) => read(`/keys/${k.id}`)))),
  ];
  return JSON.stringify({ agents, consumers, keys, singles });
}

async function expectUnchanged(): Promise<void> {
  expect(await snapshot()).toBe(baseline);
}

beforeAll(async () => {
  kw = await startTestServer();
  expect(
    (
      await send("POST", "/agents", {
        body: JSON.stringify({ name: "fixture-agent", upstream: "http://127.0.0.1:9/" }),
      })
    ).status,
  ).toBe(201);
  expect(
    (await send("POST", "/consumers", { body: JSON.stringify({ name: "fixture", metadata: { team: "qa" } }) })).status,
  ).toBe(201);
  const k = await send("POST", "/keys", {
    body: JSON.stringify({
      owner: "consumer:fixture",
      scopes: ["agent:fixture-agent"],
      rate_limit: { limit: 5, window_s: 60 },
    }),
  });
  expect(k.status).toBe(201);
  keyId = (JSON.parse(k.text) as { key: { id: string } }).key.id;
  baseline = await snapshot();
});
afterAll(async () => {
  await kw?.close();
});

/** Every admin endpoint, with a body that would succeed where one is needed. */
const endpoints = (): Array<{ method: string; path: string; body?: string }> => [
  { method: "POST", path: "/agents", body: JSON.stringify({ name: "fresh-agent", upstream: "http://127.0.0.1:9" }) },
  { method: "GET", path: "/agents" },
  { method: "GET", path: "/agents/fixture-agent" },
  { method: "PATCH", path: "/agents/fixture-agent", body: JSON.stringify({ description: "changed" }) },
  { method: "DELETE", path: "/agents/fixture-agent" },
  { method: "POST", path: "/consumers", body: JSON.stringify({ name: "fresh" }) },
  { method: "GET", path: "/consumers" },
  { method: "GET", path: "/consumers/fixture" },
  { method: "PATCH", path: "/consumers/fixture", body: JSON.stringify({ metadata: {} }) },
  { method: "DELETE", path: "/consumers/fixture" },
  { method: "POST", path: "/keys", body: JSON.stringify({ owner: "consumer:fixture", scopes: [] }) },
  { method: "GET", path: "/keys" },
  { method: "GET", path: `/keys/${keyId}` },
  { method: "PATCH", path: `/keys/${keyId}`, body: JSON.stringify({ scopes: ["agent:*"] }) },
  { method: "POST", path: `/keys/${keyId}/revoke` },
  { method: "POST", path: `/keys/${keyId}/rotate`, body: "{}" },
  { method: "POST", path: `/keys/${keyId}/freeze` },
  { method: "POST", path: `/keys/${keyId}/unfreeze` },
  { method: "GET", path: "/audit" },
  { method: "GET", path: "/audit/verify" },
];

/** Endpoints that read a JSON body, each with a valid body to vary. */
const bodyEndpoints = (): Array<{ method: string; path: string; valid: Record<string, unknown> }> => [
  { method: "POST", path: "/agents", valid: { name: "fresh-agent", upstream: "http://127.0.0.1:9" } },
  { method: "PATCH", path: "/agents/fixture-agent", valid: { description: "changed" } },
  { method: "POST", path: "/consumers", valid: { name: "fresh" } },
  { method: "PATCH", path: "/consumers/fixture", valid: { metadata: { a: 1 } } },
  { method: "POST", path: "/keys", valid: { owner: "consumer:fixture", scopes: ["agent:fixture-agent"] } },
  { method: "PATCH", path: `/keys/${keyId}`, valid: { scopes: ["agent:*"] } },
  { method: "POST", path: `/keys/${keyId}/rotate`, valid: { grace_s: 10 } },
];

describe("admin API: authentication", () => {
  const badAuth: Array<[string, string | null]> = [
    ["no Authorization header", null],
    ["an unknown token", `Bearer ${"x".repeat(40)}`],
    ["the admin token minus its last character", `Bearer ${TEST_ADMIN_TOKEN.slice(0, -1)}`],
    ["the admin token plus a character", `Bearer ${TEST_ADMIN_TOKEN}x`],
    ["the admin token in Basic auth", `Basic ${Buffer.from(`admin:${TEST_ADMIN_TOKEN}`).toString("base64")}`],
    ["the bare token without a scheme", TEST_ADMIN_TOKEN],
    ["an empty bearer", "Bearer "],
    ["a 10 000-character token", `Bearer ${"a".repeat(10_000)}`],
    ["an API key instead of an admin token", `Bearer kwk_${"a".repeat(38)}`],
  ];

  it.each(badAuth)("answers 401 unauthorized on every endpoint for %s, changing nothing", async (_label, auth) => {
    for (const ep of endpoints()) {
      const r = await send(ep.method, ep.path, { auth, ...(ep.body !== undefined ? { body: ep.body } : {}) });
      expectError(r, 401, "unauthorized");
    }
    await expectUnchanged();
  });

  it("accepts the auth scheme in any case, as RFC 9110 §11.1 and the gateway do", async () => {
    const r = await send("GET", "/agents", { auth: `bearer ${TEST_ADMIN_TOKEN}` });
    expect(r.status, r.text).toBe(200);
  });
});

describe("admin API: malformed and mistyped bodies", () => {
  const malformed = ["{", '{"name": "x",}', "nul", "{'name': 'x'}", "\uFEFF{}", '{"a":1}{"b":2}', "\u0000"];
  const notObjects = ["null", "[]", '"string"', "42", "true"];

  it.each([...malformed, ...notObjects])(
    "answers 400 invalid_request to the body %j on every body endpoint",
    async (body) => {
      for (const ep of bodyEndpoints()) {
        expectError(await send(ep.method, ep.path, { body }), 400, "invalid_request");
      }
      await expectUnchanged();
    },
  );

  const wrongTypes: Array<[string, string, Record<string, unknown>]> = [
    ["POST", "/agents", { name: 1, upstream: "http://127.0.0.1:9" }],
    ["POST", "/agents", { name: ["x"], upstream: "http://127.0.0.1:9" }],
    ["POST", "/agents", { name: null, upstream: "http://127.0.0.1:9" }],
    ["POST", "/agents", { name: "typed", upstream: 5 }],
    ["POST", "/agents", { name: "typed", upstream: { href: "http://x" } }],
    ["POST", "/agents", { name: "typed", upstream: "http://127.0.0.1:9", description: 3 }],
    ["PATCH", "/agents/fixture-agent", { upstream: 5 }],
    ["PATCH", "/agents/fixture-agent", { description: ["x"] }],
    ["POST", "/consumers", { name: 5 }],
    ["POST", "/consumers", { name: "typed", metadata: "team=qa" }],
    ["POST", "/consumers", { name: "typed", metadata: [1, 2] }],
    ["PATCH", "/consumers/fixture", { metadata: 5 }],
    ["PATCH", "/consumers/fixture", { metadata: null }],
    ["POST", "/keys", { owner: 5, scopes: [] }],
    ["POST", "/keys", { owner: "user:..", scopes: [] }],
    ["POST", "/keys", { owner: "user:a/b", scopes: [] }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: "agent:*" }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [1] }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], name: 5 }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], expires_at: 1_900_000_000_000 }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], expires_in: "60" }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], expires_in: 1.5 }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], rate_limit: "10/s" }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], rate_limit: { limit: "10", window_s: 60 } }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], quota: { limit: 5, period: "week" } }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], quota: 5 }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], ip_allow: "10.0.0.0/8" }],
    ["PATCH", "/keys/:id", { scopes: "agent:*" }],
    ["PATCH", "/keys/:id", { name: 5 }],
    ["PATCH", "/keys/:id", { rate_limit: [10, 60] }],
    ["POST", "/keys/:id/rotate", { grace_s: "10" }],
    ["POST", "/keys/:id/rotate", { grace_s: 1.5 }],
    ["POST", "/keys/:id/rotate", { grace_s: null }],
  ];

  it.each(wrongTypes)("%s %s with %j: 400 invalid_request", async (method, path, body) => {
    const r = await send(method, path.replace(":id", keyId), { body: JSON.stringify(body) });
    expectError(r, 400, "invalid_request");
    await expectUnchanged();
  });

  const unknownFields: Array<[string, string, Record<string, unknown>]> = [
    ["POST", "/agents", { name: "extra", upstream: "http://127.0.0.1:9", extra: 1 }],
    ["POST", "/agents", { name: "extra", upstream: "http://127.0.0.1:9", created_at: "2020-01-01T00:00:00Z" }],
    ["PATCH", "/agents/fixture-agent", { name: "renamed" }],
    ["POST", "/consumers", { name: "extra", meta: {} }],
    ["PATCH", "/consumers/fixture", { metadata: {}, name: "renamed" }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], secret: `kwk_${"a".repeat(38)}` }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], id: "key_chosen" }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], status: "revoked" }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], hash: "00" }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], rate_limit: { limit: 1, window_s: 1, burst: 9 } }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], quota: { limit: 1, period: "day", used: 0 } }],
    ["PATCH", "/keys/:id", { owner: "consumer:other" }],
    ["PATCH", "/keys/:id", { status: "active" }],
    ["PATCH", "/keys/:id", { rotated_to: "key_x" }],
    ["POST", "/keys/:id/rotate", { grace: 5 }],
  ];

  it.each(unknownFields)("%s %s with an unknown field %j: 400 invalid_request", async (method, path, body) => {
    const r = await send(method, path.replace(":id", keyId), { body: JSON.stringify(body) });
    expectError(r, 400, "invalid_request");
    await expectUnchanged();
  });

  it("refuses __proto__ as a top-level field", async () => {
    const body = '{"name":"proto","upstream":"http://127.0.0.1:9","__proto__":{"polluted":1}}';
    expectError(await send("POST", "/agents", { body }), 400, "invalid_request");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await expectUnchanged();
  });

  const missing: Array<[string, string, Record<string, unknown> | undefined]> = [
    ["POST", "/agents", {}],
    ["POST", "/agents", undefined],
    ["POST", "/agents", { name: "half" }],
    ["POST", "/agents", { upstream: "http://127.0.0.1:9" }],
    ["POST", "/consumers", {}],
    ["POST", "/consumers", { metadata: {} }],
    ["PATCH", "/consumers/fixture", {}],
    ["POST", "/keys", {}],
    ["POST", "/keys", { owner: "consumer:fixture" }],
    ["POST", "/keys", { scopes: ["agent:*"] }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], rate_limit: { limit: 5 } }],
    ["POST", "/keys", { owner: "consumer:fixture", scopes: [], quota: { period: "day" } }],
  ];

  it.each(missing)("%s %s without a required field (%j): 400 invalid_request", async (method, path, body) => {
    const r = await send(method, path, body === undefined ? {} : { body: JSON.stringify(body) });
    expectError(r, 400, "invalid_request");
    await expectUnchanged();
  });
});

describe("admin API: invalid values", () => {
  const agent = (over: Record<string, unknown>) => ({ name: "valid-name", upstream: "http://127.0.0.1:9", ...over });
  const key = (over: Record<string, unknown>) => ({ owner: "consumer:fixture", scopes: ["agent:*"], ...over });
  const cases: Array<[string, string, string, Record<string, unknown>]> = [
    ["agent name with a slash", "POST", "/agents", agent({ name: "a/b" })],
    ["agent name with an encoded slash", "POST", "/agents", agent({ name: "a%2Fb" })],
    ["agent name ..", "POST", "/agents", agent({ name: ".." })],
    ["agent name in capitals", "POST", "/agents", agent({ name: "Billing" })],
    ["agent name starting with -", "POST", "/agents", agent({ name: "-a" })],
    ["agent name of 64 chars", "POST", "/agents", agent({ name: "a".repeat(64) })],
    ["empty agent name", "POST", "/agents", agent({ name: "" })],
    ["agent name with a space", "POST", "/agents", agent({ name: "a b" })],
    ["agent name with a newline", "POST", "/agents", agent({ name: "a\nb" })],
    ["upstream not a URL", "POST", "/agents", agent({ upstream: "not a url" })],
    ["upstream ftp", "POST", "/agents", agent({ upstream: "ftp://127.0.0.1/" })],
    ["upstream javascript:", "POST", "/agents", agent({ upstream: "javascript:alert(1)" })],
    ["upstream with credentials", "POST", "/agents", agent({ upstream: "http://u:p@127.0.0.1/" })],
    ["upstream with a query", "POST", "/agents", agent({ upstream: "http://127.0.0.1/?a=1" })],
    ["upstream with a fragment", "POST", "/agents", agent({ upstream: "http://127.0.0.1/#f" })],
    ["patched upstream not a URL", "PATCH", "/agents/fixture-agent", { upstream: "nope" }],
    ["consumer name with a slash", "POST", "/consumers", { name: "a/b" }],
    ["consumer name in capitals", "POST", "/consumers", { name: "ACME" }],
    ["metadata over 16 KiB", "POST", "/consumers", { name: "big", metadata: { a: "x".repeat(17 * 1024) } }],
    ["patched metadata over 16 KiB", "PATCH", "/consumers/fixture", { metadata: { a: "x".repeat(17 * 1024) } }],
    ["owner with a slash", "POST", "/keys", key({ owner: "consumer:a/b" })],
    ["owner of an unknown kind", "POST", "/keys", key({ owner: "team:x" })],
    ["owner without a name", "POST", "/keys", key({ owner: "consumer:" })],
    ["owner that does not exist", "POST", "/keys", key({ owner: "consumer:nobody" })],
    ["agent owner that does not exist", "POST", "/keys", key({ owner: "agent:nobody" })],
    ["scope with a space", "POST", "/keys", key({ scopes: ["agent:a b"] })],
    ["empty scope", "POST", "/keys", key({ scopes: [""] })],
    ["101 scopes", "POST", "/keys", key({ scopes: Array.from({ length: 101 }, (_, i) => `s${i}`) })],
    ["expires_at not RFC 3339", "POST", "/keys", key({ expires_at: "tomorrow" })],
    ["expires_at month 13", "POST", "/keys", key({ expires_at: "2030-13-01T00:00:00Z" })],
    ["expires_at in the past", "POST", "/keys", key({ expires_at: "2001-01-01T00:00:00Z" })],
    ["expires_at and expires_in", "POST", "/keys", key({ expires_at: "2099-01-01T00:00:00Z", expires_in: 60 })],
    ["expires_in 0", "POST", "/keys", key({ expires_in: 0 })],
    ["expires_in negative", "POST", "/keys", key({ expires_in: -60 })],
    ["rate limit 0", "POST", "/keys", key({ rate_limit: { limit: 0, window_s: 60 } })],
    ["rate limit negative", "POST", "/keys", key({ rate_limit: { limit: -1, window_s: 60 } })],
    ["rate limit fractional", "POST", "/keys", key({ rate_limit: { limit: 1.5, window_s: 60 } })],
    ["rate window 0", "POST", "/keys", key({ rate_limit: { limit: 10, window_s: 0 } })],
    ["rate window negative", "POST", "/keys", key({ rate_limit: { limit: 10, window_s: -1 } })],
    ["rate window over a day", "POST", "/keys", key({ rate_limit: { limit: 10, window_s: 86_401 } })],
    ["quota 0", "POST", "/keys", key({ quota: { limit: 0, period: "day" } })],
    ["quota negative", "POST", "/keys", key({ quota: { limit: -5, period: "total" } })],
    ["patched rate limit 0", "PATCH", "/keys/:id", { rate_limit: { limit: 0, window_s: 60 } }],
    ["patched quota negative", "PATCH", "/keys/:id", { quota: { limit: -1, period: "month" } }],
    ["patched expiry in the past", "PATCH", "/keys/:id", { expires_at: "2001-01-01T00:00:00Z" }],
    ["patched expires_in 0", "PATCH", "/keys/:id", { expires_in: 0 }],
    ["rotate grace negative", "POST", "/keys/:id/rotate", { grace_s: -1 }],
    ["rotate grace over 30 days", "POST", "/keys/:id/rotate", { grace_s: 30 * 86_400 + 1 }],
  ];

  it.each(cases)("%s: 400 invalid_request", async (_label, method, path, body) => {
    const r = await send(method, path.replace(":id", keyId), { body: JSON.stringify(body) });
    expectError(r, 400, "invalid_request");
    await expectUnchanged();
  });

  const badCidrs = [
    "10.0.0.0/33",
    "300.1.1.1",
    "10.0.0",
    "10.0.0.0/8/8",
    "10.0.0.0/-1",
    "10.0.0.0/",
    "10.0.0.0/ 8",
    "::/129",
    "abc",
    "",
    " 10.0.0.1",
    "10.0.0.0/8, 11.0.0.0/8",
    "localhost",
  ];

  it.each(badCidrs)("ip_allow entry %j: 400 invalid_request on create and on patch", async (cidr) => {
    expectError(
      await send("POST", "/keys", { body: JSON.stringify(key({ ip_allow: [cidr] })) }),
      400,
      "invalid_request",
    );
    expectError(
      await send("PATCH", `/keys/${keyId}`, { body: JSON.stringify({ ip_allow: ["127.0.0.1", cidr] }) }),
      400,
      "invalid_request",
    );
    await expectUnchanged();
  });

  it("an empty ip_allow list is refused (null clears it)", async () => {
    expectError(await send("POST", "/keys", { body: JSON.stringify(key({ ip_allow: [] })) }), 400, "invalid_request");
    await expectUnchanged();
  });

  it("metadata nested 100 000 deep: 400, not a crash", async () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    for (const [method, path, body] of [
      ["POST", "/consumers", `{"name":"deep","metadata":{"a":${deep}}}`],
      ["PATCH", "/consumers/fixture", `{"metadata":{"a":${deep}}}`],
    ] as const) {
      expectError(await send(method, path, { body }), 400, "invalid_request");
    }
    await expectUnchanged();
  });

  it("metadata with a __proto__ key is stored as given or refused, never silently changed", async () => {
    const body = '{"name":"proto-meta","metadata":{"__proto__":{"polluted":1},"kept":true}}';
    const r = await send("POST", "/consumers", { body });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    if (r.status === 400) {
      expectError(r, 400, "invalid_request");
      await expectUnchanged();
      return;
    }
    expect(r.status, r.text).toBe(201);
    await send("DELETE", "/consumers/proto-meta");
    expect(r.text).toContain('"__proto__"');
  });
});

describe("admin API: unknown resources and odd names", () => {
  const notFound: Array<[string, string, Record<string, unknown> | undefined]> = [
    ["GET", "/agents/nope", undefined],
    ["PATCH", "/agents/nope", { description: "x" }],
    ["DELETE", "/agents/nope", undefined],
    ["GET", "/consumers/nope", undefined],
    ["PATCH", "/consumers/nope", { metadata: {} }],
    ["DELETE", "/consumers/nope", undefined],
    ["GET", "/keys/key_nope", undefined],
    ["PATCH", "/keys/key_nope", { name: "x" }],
    ["POST", "/keys/key_nope/revoke", undefined],
    ["POST", "/keys/key_nope/rotate", {}],
    ["POST", "/keys/key_nope/freeze", undefined],
    ["POST", "/keys/key_nope/unfreeze", undefined],
    // Encoded slashes decode to a name no resource can have.
    ["GET", "/agents/a%2Fb", undefined],
    ["PATCH", "/agents/a%2Fb", { description: "x" }],
    ["DELETE", "/agents/a%2Fb", undefined],
    ["GET", "/agents/fixture-agent%2F..", undefined],
    ["GET", "/agents/%2E%2E", undefined],
    ["GET", "/consumers/a%2Fb", undefined],
    ["DELETE", "/consumers/a%2Fb", undefined],
    ["GET", "/keys/a%2Fb", undefined],
    ["POST", "/keys/a%2Fb/revoke", undefined],
    ["GET", "/keys/%20", undefined],
    // A real slash is another path: no such endpoint.
    ["GET", "/agents/a/b", undefined],
    ["DELETE", "/agents/fixture-agent/extra", undefined],
    ["GET", "/nothing-here", undefined],
    ["POST", `/keys/KEYID/explode`, undefined],
  ];

  it.each(notFound)("%s %s: 404 not_found", async (method, path, body) => {
    const r = await send(
      method,
      path.replace("KEYID", keyId),
      body === undefined ? {} : { body: JSON.stringify(body) },
    );
    expectError(r, 404, "not_found");
    await expectUnchanged();
  });

  it.each(["/agents/%E0%A4%A", "/agents/%ZZ", "/consumers/%", "/keys/%C0%AF", "/agents/%00"])(
    "GET %s (broken percent-encoding): 400 invalid_request",
    async (path) => {
      expectError(await send("GET", path), 400, "invalid_request");
    },
  );

  it("bad list queries: 400 invalid_request", async () => {
    for (const path of [
      "/agents?limit=0",
      "/agents?limit=-1",
      "/agents?limit=abc",
      "/agents?limit=1001",
      "/agents?limit=1.5",
      `/agents?cursor=${"a".repeat(600)}`,
      "/consumers?limit=0",
      "/keys?limit=99999",
      "/keys?owner=nobody",
      "/keys?owner=consumer:a/b",
      "/audit?since=yesterday",
      "/audit?until=2026-02-30T00:00:00Z",
      "/audit?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
      "/audit?limit=0",
      "/audit?actor=admin:x",
      "/audit?cursor=garbage",
    ]) {
      expectError(await send("GET", path), 400, "invalid_request");
    }
  });
});

describe("admin API: sizes, types, duplicates, methods", () => {
  it("a body over 1 MiB with Content-Length: 413 payload_too_large on every body endpoint", async () => {
    for (const ep of bodyEndpoints()) {
      const body = JSON.stringify({ ...ep.valid, pad: "x".repeat(MIB) });
      expectError(await send(ep.method, ep.path, { body }), 413, "payload_too_large");
    }
    await expectUnchanged();
  });

  it("a chunked body over 1 MiB: 413 payload_too_large", async () => {
    const { hostname, port } = new URL(kw.url);
    const reply = await new Promise<Reply>((resolve, reject) => {
      const req = http.request(
        {
          hostname,
          port,
          path: "/admin/v1/agents",
          method: "POST",
          headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, "content-type": JSON_TYPE },
        },
        (res) => {
          let text = "";
          res.on("data", (c: Buffer) => {
            text += c.toString();
          });
          res.on("end", () => {
            const headers = new Headers();
            for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") headers.set(k, v);
            resolve({ status: res.statusCode ?? 0, headers, text });
          });
        },
      );
      req.on("error", reject);
      req.write('{"name":"chunked","upstream":"http://127.0.0.1:9","pad":"');
      for (let i = 0; i < 24; i++) req.write("x".repeat(64 * 1024));
      req.end('"}');
    });
    expectError(reply, 413, "payload_too_large");
    await expectUnchanged();
    // The server still answers on a new connection.
    expect((await send("GET", "/agents")).status).toBe(200);
  });

  it("a body of exactly 1 MiB is accepted", async () => {
    const core = JSON.stringify({ name: "at-limit", upstream: "http://127.0.0.1:9" });
    const body = core + " ".repeat(MIB - core.length);
    expect(Buffer.byteLength(body)).toBe(MIB);
    const r = await send("POST", "/agents", { body });
    expect(r.status, r.text).toBe(201);
    expect((await send("DELETE", "/agents/at-limit")).status).toBe(204);
    await expectUnchanged();
  });

  it.each(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp"])(
    "a JSON body sent as %s: 415 unsupported_media_type",
    async (type) => {
      for (const ep of bodyEndpoints()) {
        const r = await send(ep.method, ep.path, { body: JSON.stringify(ep.valid), headers: { "content-type": type } });
        expectError(r, 415, "unsupported_media_type");
      }
      await expectUnchanged();
    },
  );

  it("duplicate creates: 409 conflict", async () => {
    const agent = { name: "fixture-agent", upstream: "http://127.0.0.1:10/" };
    expectError(await send("POST", "/agents", { body: JSON.stringify(agent) }), 409, "conflict");
    expectError(await send("POST", "/consumers", { body: JSON.stringify({ name: "fixture" }) }), 409, "conflict");
    await expectUnchanged();
  });

  it("concurrent creates of one name: exactly one 201, the rest 409", async () => {
    const statuses = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const r = await send("POST", "/consumers", { body: JSON.stringify({ name: "racer" }) });
        if (r.status !== 201) expectError(r, 409, "conflict");
        return r.status;
      }),
    );
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect((await send("DELETE", "/consumers/racer")).status).toBe(204);
    await expectUnchanged();
  });

  it("state-changing calls that conflict: 409 and no change", async () => {
    const created = await send("POST", "/keys", { body: JSON.stringify({ owner: "consumer:fixture", scopes: [] }) });
    const id = (JSON.parse(created.text) as { key: { id: string } }).key.id;
    expect((await send("POST", `/keys/${id}/revoke`)).status).toBe(200);
    const before = await send("GET", `/keys/${id}`);
    expectError(await send("POST", `/keys/${id}/freeze`), 409, "conflict");
    expectError(await send("POST", `/keys/${id}/unfreeze`), 409, "conflict");
    expectError(await send("POST", `/keys/${id}/rotate`, { body: "{}" }), 409, "conflict");
    expect((await send("GET", `/keys/${id}`)).text).toBe(before.text);
    const keys = JSON.parse((await send("GET", "/keys?owner=consumer:fixture")).text) as { items: unknown[] };
    expect(keys.items).toHaveLength(2);
    // The API has no key delete: take this key out of the baseline instead.
    baseline = await snapshot();
  });

  const notAllowed: Array<[string, string]> = [
    ["PUT", "/agents"],
    ["DELETE", "/agents"],
    ["POST", "/agents/fixture-agent"],
    ["PUT", "/agents/fixture-agent"],
    ["PATCH", "/consumers"],
    ["PUT", "/keys/KEYID"],
    ["DELETE", "/keys/KEYID"],
    ["GET", "/keys/KEYID/revoke"],
    ["DELETE", "/keys/KEYID/rotate"],
    ["POST", "/audit"],
    ["DELETE", "/audit/verify"],
  ];

  it.each(notAllowed)("%s %s: 405 method_not_allowed", async (method, path) => {
    const r = await send(method, path.replace("KEYID", keyId), method === "GET" ? {} : { body: "{}" });
    expectError(r, 405, "method_not_allowed");
    await expectUnchanged();
  });

  it("a 405 names the allowed methods in Allow (RFC 9110 §15.5.6)", async () => {
    const r = await send("PUT", "/agents", { body: "{}" });
    expect(r.status).toBe(405);
    // HEAD is served wherever GET is; listing it is allowed, not required.
    const allow = (r.headers.get("allow") ?? "").split(/,\s*/).filter((m) => m !== "HEAD");
    expect(allow.sort()).toEqual(["GET", "POST"]);
  });
});

describe("admin API: raw protocol abuse", () => {
  /** Writes raw bytes on a fresh TCP connection and returns everything the server sent back. */
  function raw(bytes: string): Promise<string> {
    const { hostname, port } = new URL(kw.url);
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), hostname, () => socket.end(bytes));
      let out = "";
      socket.on("data", (d: Buffer) => {
        out += d.toString("latin1");
      });
      socket.on("close", () => resolve(out));
      socket.on("error", reject);
    });
  }

  const head = (extra: string) =>
    `POST /admin/v1/consumers HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TEST_ADMIN_TOKEN}\r\n${extra}\r\ncontent-type: application/json\r\ncontent-length: 19\r\n\r\n{"name":"injected"}`;

  it.each([
    ["a bare CR inside a value", "X-Note: a\rb"],
    ["a bare LF inside a value", "X-Note: a\nX-Injected: b"],
    ["CR LF then a line without a colon", "X-Note: a\r\nnot a header"],
    ["a NUL byte in a value", "X-Note: a\u0000b"],
    ["obsolete line folding", "X-Note: a\r\n folded"],
    ["a space in a header name", "X Note: a"],
  ])("a header with %s: 400 from the parser, nothing created, the server stays up", async (_label, bad) => {
    const reply = await raw(head(bad));
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(reply).not.toMatch(/ 500 /);
    expect((await send("GET", "/consumers/injected")).status).toBe(404);
    expect((await fetch(`${kw.url}/healthz`)).status).toBe(200);
    await expectUnchanged();
  });

  it("a request smuggling attempt (Content-Length and Transfer-Encoding): 400, nothing created", async () => {
    const smuggled =
      `POST /admin/v1/consumers HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TEST_ADMIN_TOKEN}\r\n` +
      "content-type: application/json\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n" +
      '13\r\n{"name":"smuggled"}\r\n0\r\n\r\n';
    const reply = await raw(smuggled);
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect((await send("GET", "/consumers/smuggled")).status).toBe(404);
    await expectUnchanged();
  });

  it("garbage instead of HTTP: 400, and the server stays up", async () => {
    const reply = await raw(
      "\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000\u00a1\u0003\u0003 not http at all\r\n\r\n",
    );
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect((await fetch(`${kw.url}/healthz`)).status).toBe(200);
  });

  it("no admin request ever answered 500", async () => {
    const metrics = await (await fetch(`${kw.url}/metrics`)).text();
    const fiveHundreds = metrics.split("\n").filter((l) => /^keyward_http_requests_total\{.*status="5\d\d"/.test(l));
    expect(fiveHundreds).toEqual([]);
  });
});
