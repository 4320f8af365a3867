import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeTokenEndpoint, startFakeTokenEndpoint } from "../../test-support/fake-token-endpoint.js";
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from "../../test-support/server.js";

/**
 * Bad input to the credential and grant endpoints: each answers the one error body with a stable
 * code (never a 500), and leaves nothing behind: the state read back through the API is unchanged.
 */

let kw: TestServer;
let agentKey: string;
let baseline: string;
// A healthy provider: a failing one would retry in the background and move its status under us.
let tokens: FakeTokenEndpoint;

interface Reply {
  status: number;
  body: { error?: { code: string; message: string; request_id: string } } & Record<string, unknown>;
  text: string;
}

async function send(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(`${kw.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TEST_ADMIN_TOKEN}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {}, text };
}

function expectError(r: Reply, status: number, code: string): string {
  expect(r.status, r.text).toBe(status);
  expect(Object.keys(r.body)).toEqual(["error"]);
  expect(r.body.error?.code).toBe(code);
  expect(r.body.error?.request_id).toBeTruthy();
  return r.body.error?.message ?? "";
}

async function snapshot(): Promise<string> {
  const list = await send("GET", "/admin/v1/credentials?limit=1000");
  const names = (list.body.items as Array<{ name: string }>).map((c) => c.name);
  const each = await Promise.all(names.map((n) => send("GET", `/admin/v1/credentials/${n}`)));
  const grants = await send("GET", "/admin/v1/agents/bot/grants");
  return JSON.stringify([list.body, each.map((r) => r.body), grants.body]);
}

beforeAll(async () => {
  kw = await startTestServer();
  tokens = await startFakeTokenEndpoint({ clientId: "c", clientSecret: "s" });
  await kw.admin("POST", "/agents", { name: "bot", upstream: "http://127.0.0.1:9" });
  agentKey = (await kw.admin("POST", "/keys", { owner: "agent:bot", scopes: [] })).body.secret;
  expect((await kw.admin("PUT", "/credentials/known", { value: "known-value" })).status).toBe(201);
  expect(
    (
      await kw.admin("PUT", "/credentials/provider", {
        type: "oauth2_client_credentials",
        token_url: tokens.url,
        client_id: "c",
        client_secret: "s",
      })
    ).status,
  ).toBe(201);
  await kw.admin("PUT", "/agents/bot/grants", { credentials: [{ name: "known", mode: "read" }] });
  baseline = await snapshot();
});
afterAll(async () => {
  await kw?.close();
  await tokens?.close();
});

describe("PUT /admin/v1/credentials/{name}", () => {
  const bad: Array<[string, string, unknown, number, string, RegExp?]> = [
    ["a name with a space", "a%20b", { value: "v" }, 400, "invalid_request", /name/],
    ["a name of dots", "..%2E", { value: "v" }, 400, "invalid_request"],
    ["__proto__ as a name", "__proto__", { value: "v" }, 400, "invalid_request"],
    ["a name of 129 characters", "n".repeat(129), { value: "v" }, 400, "invalid_request"],
    ["no value", "x", {}, 400, "invalid_request", /value/],
    ["a number as value", "x", { value: 42 }, 400, "invalid_request", /value/],
    ["an empty value", "x", { value: "" }, 400, "invalid_request", /empty/],
    ["a value over 64 KiB", "x", { value: "x".repeat(65_537) }, 413, "payload_too_large", /65536/],
    ["a lone surrogate", "x", { value: "a\uD800" }, 400, "invalid_request", /Unicode/],
    ["an unknown field", "x", { value: "v", values: "w" }, 400, "invalid_request"],
    ["an unknown type", "x", { type: "api_key", value: "v" }, 400, "invalid_request", /type/],
    ["a relative egress URL", "x", { value: "v", egress: { base_url: "/v1" } }, 400, "invalid_request", /base_url/],
    ["an ftp egress URL", "x", { value: "v", egress: { base_url: "ftp://h/" } }, 400, "invalid_request", /http/],
    [
      "credentials in the egress URL",
      "x",
      { value: "v", egress: { base_url: "https://u:p@h/" } },
      400,
      "invalid_request",
      /credentials/,
    ],
    [
      "a query in the egress URL",
      "x",
      { value: "v", egress: { base_url: "https://h/?a=1" } },
      400,
      "invalid_request",
      /query/,
    ],
    [
      "an invalid header name",
      "x",
      { value: "v", egress: { base_url: "https://h/", header: "Bad Header" } },
      400,
      "invalid_request",
      /header/,
    ],
    [
      "the Host header",
      "x",
      { value: "v", egress: { base_url: "https://h/", header: "Host" } },
      400,
      "invalid_request",
    ],
    [
      "a format without {value}",
      "x",
      { value: "v", egress: { base_url: "https://h/", format: "Bearer" } },
      400,
      "invalid_request",
      /\{value\}/,
    ],
    [
      "a format with a line break",
      "x",
      { value: "v", egress: { base_url: "https://h/", format: "{value}\r\nX-Evil: 1" } },
      400,
      "invalid_request",
    ],
    [
      "an http token URL off loopback",
      "x",
      {
        type: "oauth2_client_credentials",
        token_url: "http://login.example.com/t",
        client_id: "c",
        client_secret: "s",
      },
      400,
      "invalid_request",
      /https/,
    ],
    [
      "a provider without a client secret",
      "x",
      { type: "oauth2_client_credentials", token_url: "https://login.example.com/t", client_id: "c" },
      400,
      "invalid_request",
      /client_secret/,
    ],
    [
      "a value on a provider",
      "x",
      { type: "oauth2_client_credentials", token_url: "https://l/t", client_id: "c", client_secret: "s", value: "v" },
      400,
      "invalid_request",
    ],
  ];

  it.each(bad)("refuses %s", async (_, name, body, status, code, message) => {
    const text = expectError(await send("PUT", `/admin/v1/credentials/${name}`, JSON.stringify(body)), status, code);
    if (message) expect(text).toMatch(message);
    // The error never repeats the value it refused.
    expect(text).not.toContain("xxxxxxxx");
    expect(await snapshot()).toBe(baseline);
  });

  it("refuses a body over 1 MiB, malformed JSON, NUL and a non-JSON content type", async () => {
    expectError(
      await send("PUT", "/admin/v1/credentials/x", JSON.stringify({ value: "x".repeat(1_100_000) })),
      413,
      "payload_too_large",
    );
    expectError(await send("PUT", "/admin/v1/credentials/x", '{"value": "v"'), 400, "invalid_request");
    expectError(await send("PUT", "/admin/v1/credentials/x", '{"value": "a\\u0000b"}'), 400, "invalid_request");
    expectError(
      await send("PUT", "/admin/v1/credentials/x", "value=v", { "content-type": "application/x-www-form-urlencoded" }),
      415,
      "unsupported_media_type",
    );
    expect(await snapshot()).toBe(baseline);
  });

  it("refuses admin calls without the admin token", async () => {
    expectError(
      await send("PUT", "/admin/v1/credentials/x", '{"value":"v"}', { authorization: "Bearer nope" }),
      401,
      "unauthorized",
    );
    expectError(
      await send("GET", "/admin/v1/credentials", undefined, { authorization: `Bearer ${agentKey}` }),
      401,
      "unauthorized",
    );
    expect(await snapshot()).toBe(baseline);
  });
});

describe("rollback and delete", () => {
  it.each([
    ["version 0", { version: 0 }],
    ["a string version", { version: "1" }],
    ["no version", {}],
    ["a fractional version", { version: 1.5 }],
  ])("refuses %s", async (_, body) => {
    expectError(
      await send("POST", "/admin/v1/credentials/known/rollback", JSON.stringify(body)),
      400,
      "invalid_request",
    );
    expect(await snapshot()).toBe(baseline);
  });

  it("answers 404 for an unknown version, an unknown credential, or a name that cannot exist", async () => {
    expectError(await send("POST", "/admin/v1/credentials/known/rollback", '{"version":99}'), 404, "not_found");
    expectError(await send("POST", "/admin/v1/credentials/missing/rollback", '{"version":1}'), 404, "not_found");
    expectError(await send("GET", "/admin/v1/credentials/missing"), 404, "not_found");
    expectError(await send("GET", "/admin/v1/credentials/a%20b"), 404, "not_found");
    expectError(await send("DELETE", "/admin/v1/credentials/missing"), 404, "not_found");
    expect(await snapshot()).toBe(baseline);
  });

  it("refuses to roll back a token provider", async () => {
    expectError(await send("POST", "/admin/v1/credentials/provider/rollback", '{"version":1}'), 400, "invalid_request");
    expect(await snapshot()).toBe(baseline);
  });
});

describe("PUT /admin/v1/agents/{name}/grants", () => {
  const bad: Array<[string, string, unknown, number, string]> = [
    ["an unknown agent", "ghost", { credentials: [] }, 404, "not_found"],
    ["an agent name that cannot exist", "Bad_Name", { credentials: [] }, 404, "not_found"],
    ["no credentials list", "bot", {}, 400, "invalid_request"],
    ["an unknown credential", "bot", { credentials: [{ name: "missing", mode: "read" }] }, 400, "invalid_request"],
    ["a bad mode", "bot", { credentials: [{ name: "known", mode: "write" }] }, 400, "invalid_request"],
    [
      "a name twice",
      "bot",
      {
        credentials: [
          { name: "known", mode: "read" },
          { name: "known", mode: "inject" },
        ],
      },
      400,
      "invalid_request",
    ],
    ["an unknown agent in may_call", "bot", { credentials: [], may_call: ["ghost"] }, 400, "invalid_request"],
    ["a bad user credential name", "bot", { credentials: [], user_credentials: ["a b"] }, 400, "invalid_request"],
    ["an unknown field", "bot", { credentials: [], read: ["known"] }, 400, "invalid_request"],
    [
      "more than 1000 grants",
      "bot",
      { credentials: [], user_credentials: Array.from({ length: 1001 }, (_, i) => `u${i}`) },
      400,
      "invalid_request",
    ],
  ];

  it.each(bad)("refuses %s", async (_, agent, body, status, code) => {
    expectError(await send("PUT", `/admin/v1/agents/${agent}/grants`, JSON.stringify(body)), status, code);
    expect(await snapshot()).toBe(baseline);
  });
});

describe("agent endpoints", () => {
  it.each(["abc", "-1", "1.5", "99999999999999999", ""])("refuses ?since=%s", async (since) => {
    const res = await send("GET", `/v1/credentials?since=${since}`, undefined, { authorization: `Bearer ${agentKey}` });
    expectError(res, 400, "invalid_request");
  });

  it("refuses a Last-Event-ID that is not a cursor", async () => {
    const res = await send("GET", "/v1/credentials/events", undefined, {
      authorization: `Bearer ${agentKey}`,
      "last-event-id": "not-a-cursor",
    });
    expectError(res, 400, "invalid_request");
  });

  it("answers 405 for methods the endpoints do not take", async () => {
    const res = await send("POST", "/v1/credentials", "{}", { authorization: `Bearer ${agentKey}` });
    expectError(res, 405, "method_not_allowed");
  });
});
