import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Json, startUsersFixture, type UsersFixture } from "../../test-support/users/users-fixture.js";

/**
 * Bad input to the user-credential and tool endpoints: every case is a 4xx with the SPEC error
 * body, never a 500, and nothing is written.
 */

let f: UsersFixture;
let agent: { name: string; key: string };
let userKey: string;
let jwt: string;

beforeAll(async () => {
  f = await startUsersFixture();
  agent = await f.agent(["k"]);
  userKey = (await f.userKey("eve")).secret;
  await f.adminPut("eve", "k", "EVE-K");
  jwt = await f.forwarded(userKey, agent.name);
});
afterAll(async () => {
  await f?.close();
});

async function raw(method: string, path: string, credential: string, body: string, type = "application/json") {
  const res = await fetch(`${f.kw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${credential}`, "content-type": type },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Json) : undefined };
}

function expectError(r: { status: number; body: Json }, status: number, code: string): void {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.body.error).toEqual({ code, message: expect.any(String), request_id: expect.any(String) });
}

const adminPath = (user: string, name = "k") => `/admin/v1/users/${user}/credentials/${name}`;

describe("bodies", () => {
  const targets = () => [
    { method: "PUT", path: adminPath("eve"), credential: f.kw.adminToken },
    { method: "PUT", path: "/v1/users/me/credentials/k", credential: userKey },
    { method: "POST", path: "/v1/tools/credentials", credential: agent.key },
    { method: "POST", path: "/v1/audit/events", credential: agent.key },
  ];

  it("refuses malformed JSON, a non-JSON type, NUL characters and bodies over 1 MiB", async () => {
    for (const t of targets()) {
      expectError(await raw(t.method, t.path, t.credential, '{"value": '), 400, "invalid_request");
      expectError(await raw(t.method, t.path, t.credential, "[1,2]"), 400, "invalid_request");
      expectError(await raw(t.method, t.path, t.credential, "null"), 400, "invalid_request");
      expectError(await raw(t.method, t.path, t.credential, "value=x", "text/plain"), 415, "unsupported_media_type");
      expectError(await raw(t.method, t.path, t.credential, '{"value":"a\\u0000b"}'), 400, "invalid_request");
      const huge = JSON.stringify({ value: "x".repeat(1024 * 1024 + 10) });
      expectError(await raw(t.method, t.path, t.credential, huge), 413, "payload_too_large");
    }
  });

  it("refuses wrong types, unknown fields, empty and oversized values", async () => {
    for (const path of [adminPath("eve"), "/v1/users/me/credentials/k"]) {
      const cred = path.startsWith("/admin") ? f.kw.adminToken : userKey;
      expectError(await raw("PUT", path, cred, JSON.stringify({ value: 42 })), 400, "invalid_request");
      expectError(await raw("PUT", path, cred, JSON.stringify({})), 400, "invalid_request");
      expectError(await raw("PUT", path, cred, JSON.stringify({ value: ["a"] })), 400, "invalid_request");
      expectError(await raw("PUT", path, cred, JSON.stringify({ value: "v", user: "bob" })), 400, "invalid_request");
      expectError(await raw("PUT", path, cred, JSON.stringify({ value: "" })), 400, "invalid_request");
      const big = await raw("PUT", path, cred, JSON.stringify({ value: "x".repeat(64 * 1024 + 1) }));
      expectError(big, 413, "payload_too_large");
      expectError(await raw("PUT", path, cred, JSON.stringify({ value: "\ud800" })), 400, "invalid_request");
    }
    // Nothing was written over eve's value.
    expect((await f.kw.admin("GET", "/users/eve/credentials")).body.items).toEqual([
      { name: "k", version: 1, updated_at: expect.any(String) },
    ]);
  });
});

describe("ids and names", () => {
  it("refuses bad user ids with 400 on every admin path", async () => {
    // Only dots: `.` and `..` a URL resolves away (the CLI test covers them); `...` arrives.
    for (const user of ["a%2Fb", "a:b", "x".repeat(129), "user%3A", "%20", "caf%C3%A9", "...", "user:..."]) {
      expectError(await f.call("PUT", adminPath(user), f.kw.adminToken, { value: "v" }), 400, "invalid_request");
      expectError(await f.call("DELETE", adminPath(user), f.kw.adminToken), 400, "invalid_request");
      expectError(await f.call("GET", `/admin/v1/users/${user}/credentials`, f.kw.adminToken), 400, "invalid_request");
    }
  });

  it("refuses bad names: 400 where they would be created, 404 where they are looked up", async () => {
    // (`.` and `..` never reach a server through fetch, which resolves them: the engine tests cover them.)
    for (const name of ["__proto__", "...", "a%2Fb", "sp%20ace", "x".repeat(129)]) {
      expectError(await f.call("PUT", adminPath("eve", name), f.kw.adminToken, { value: "v" }), 400, "invalid_request");
      expectError(await f.selfPut(userKey, decodeURIComponent(name), "v"), 400, "invalid_request");
      expectError(await f.call("DELETE", adminPath("eve", name), f.kw.adminToken), 404, "not_found");
    }
  });

  it("answers 404 for what an unknown user does not have, and an empty list", async () => {
    expectError(await f.call("DELETE", adminPath("ghost"), f.kw.adminToken), 404, "not_found");
    expect((await f.kw.admin("GET", "/users/ghost/credentials")).body).toEqual({ items: [], next_cursor: null });
    const page = await f.call("GET", "/admin/v1/users/eve/credentials?limit=0", f.kw.adminToken);
    expectError(page, 400, "invalid_request");
  });

  it("refuses methods the paths do not have", async () => {
    expectError(await f.call("GET", adminPath("eve"), f.kw.adminToken), 405, "method_not_allowed");
    expectError(await f.call("GET", "/v1/users/me/credentials/k", userKey), 405, "method_not_allowed");
    expectError(await f.call("GET", "/v1/tools/credentials", agent.key), 405, "method_not_allowed");
    expectError(await f.call("GET", "/v1/audit/events", agent.key), 405, "method_not_allowed");
  });
});

describe("GET /admin/v1/users", () => {
  it("refuses a bad limit, cursor or credential name with 400 and the error body", async () => {
    const b64 = (s: string) => Buffer.from(s).toString("base64url");
    for (const query of [
      "limit=0",
      "limit=-1",
      "limit=abc",
      "limit=1.5",
      "limit=1001",
      `cursor=${"a".repeat(600)}`,
      "cursor=garbage",
      `cursor=${b64("a/b")}`,
      `cursor=${b64("x".repeat(129))}`,
      "credential=",
      "credential=__proto__",
      "credential=...",
      "credential=a%2Fb",
      "credential=sp%20ace",
      `credential=${"x".repeat(129)}`,
    ]) {
      const r = await f.call("GET", `/admin/v1/users?${query}`, f.kw.adminToken);
      expect(r.status, `${query}: ${JSON.stringify(r.body)}`).toBe(400);
      expectError(r, 400, "invalid_request");
    }
  });

  it("needs the admin token: none or another credential is 401", async () => {
    expectError(await f.call("GET", "/admin/v1/users", undefined), 401, "unauthorized");
    expectError(await f.call("GET", "/admin/v1/users", "kwa_not-the-token"), 401, "unauthorized");
    expectError(await f.call("GET", "/admin/v1/users?credential=k", userKey), 401, "unauthorized");
    expectError(await f.call("POST", "/admin/v1/users", f.kw.adminToken, {}), 405, "method_not_allowed");
  });
});

describe("POST /v1/tools/credentials", () => {
  const tools = (body: unknown) => f.tools(agent.key, body);

  it("refuses malformed requests with 400 before checking the token", async () => {
    const bad: unknown[] = [
      {},
      { names: ["k"] },
      { user_token: jwt },
      { user_token: 42, names: ["k"] },
      { user_token: "", names: ["k"] },
      { user_token: jwt, names: "k" },
      { user_token: jwt, names: [] },
      { user_token: jwt, names: [1] },
      { user_token: jwt, names: ["k", "k"] },
      { user_token: jwt, names: ["__proto__"] },
      { user_token: jwt, names: ["a/b"] },
      { user_token: jwt, names: Array.from({ length: 101 }, (_, i) => `n${i}`) },
      { user_token: jwt, names: ["k"], user: "bob" },
      { user_token: "x".repeat(16 * 1024 + 1), names: ["k"] },
    ];
    for (const body of bad) expectError(await tools(body), 400, "invalid_request");
    expect((await tools({ user_token: jwt, names: ["k"] })).status).toBe(200);
  });

  it("needs an agent caller: none is 401, a user or a consumer is 403", async () => {
    expectError(
      await f.call("POST", "/v1/tools/credentials", undefined, { user_token: jwt, names: ["k"] }),
      401,
      "missing_credentials",
    );
    expectError(await f.tools("kwk_notakey", { user_token: jwt, names: ["k"] }), 401, "invalid_key");
    expectError(await f.tools(userKey, { user_token: jwt, names: ["k"] }), 403, "forbidden");
    expect((await f.kw.admin("POST", "/consumers", { name: "shop" })).status).toBe(201);
    const consumer = await f.kw.admin("POST", "/keys", { owner: "consumer:shop", scopes: ["agent:*"] });
    expectError(await f.tools(consumer.body.secret, { user_token: jwt, names: ["k"] }), 403, "forbidden");
  });
});

describe("POST /v1/audit/events", () => {
  const good = { tool: "t", user: "user:eve", outcome: "ok", redactions: 0 };
  it("refuses events that are not a small flat tool-call record", async () => {
    const bad: unknown[] = [
      {},
      { ...good, tool: "" },
      { ...good, tool: "x".repeat(201) },
      { ...good, tool: "a\nb" },
      { ...good, user: "eve" },
      { ...good, user: "agent:bot" },
      { ...good, user: "user:a/b" },
      { ...good, outcome: "maybe" },
      { ...good, redactions: -1 },
      { ...good, redactions: 1.5 },
      { ...good, redactions: "3" },
      { ...good, extra: 1 },
      { ...good, details: { nested: { a: 1 } } },
      { ...good, details: { list: [1, 2] } },
      { ...good, details: { long: "x".repeat(1025) } },
      { ...good, details: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])) },
      { ...good, details: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`k${i}`, "x".repeat(1000)])) },
      { ...good, details: "text" },
    ];
    for (const body of bad) expectError(await f.event(agent.key, body), 400, "invalid_request");
    expect((await f.event(agent.key, good)).status).toBe(201);
    const events = await f.kw.admin("GET", `/audit?action=tool.call&principal=agent:${agent.name}`);
    expect(events.body.events).toHaveLength(1);
  });

  it("needs an agent caller", async () => {
    expectError(await f.call("POST", "/v1/audit/events", undefined, good), 401, "missing_credentials");
    expectError(await f.event(userKey, good), 403, "forbidden");
  });
});

describe("concurrent writes", () => {
  it("gives 25 concurrent PUTs of one name versions 1…25: one 201, no lost write", async () => {
    const puts = await Promise.all(Array.from({ length: 25 }, (_, i) => f.adminPut("racer", "same", `v-${i}`)));
    expect(puts.filter((p) => p.status === 201)).toHaveLength(1);
    expect(puts.filter((p) => p.status === 200)).toHaveLength(24);
    expect(puts.map((p) => p.body.version).sort((a: number, b: number) => a - b)).toEqual(
      Array.from({ length: 25 }, (_, i) => i + 1),
    );
    const list = await f.kw.admin("GET", "/users/racer/credentials");
    expect(list.body.items).toEqual([{ name: "same", version: 25, updated_at: expect.any(String) }]);
    const writes = await f.kw.admin("GET", "/audit?principal=admin:adm_bootstrap&limit=1000");
    const versions = writes.body.events
      .filter((e: Json) => e.target === "user:racer")
      .map((e: Json) => e.details.version)
      .sort((a: number, b: number) => a - b);
    expect(versions).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  });
});
