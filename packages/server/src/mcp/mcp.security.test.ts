import { Writable } from "node:stream";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  accountOf,
  mcpClient,
  setUserCredential,
  textOf,
  userKey,
  writeMcpConfig,
} from "../../test-support/mcp/fixtures.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";

const ALICE_KEY = "AKIA-alice-canary-7f3e9a1c2b4d";
const BOB_KEY = "AKIA-bob-canary-0a1b2c3d4e5f";
const GATEWAY_CANARY = "keyward-gateway-env-canary-5e8f1d";
/** Every form of the secrets a result must never carry. */
const forms = (s: string) => [
  s,
  Buffer.from(s).toString("base64"),
  Buffer.from(s).toString("base64url"),
  Buffer.from(s).toString("hex"),
  encodeURIComponent(s),
];

describe("MCP gateway security", () => {
  let kw: TestServer;
  let alice: Client;
  let bob: Client;
  let aliceSecret: string;
  const logs: string[] = [];

  beforeAll(async () => {
    // The gateway's own environment: a child must never inherit it.
    process.env.KEYWARD_TEST_CANARY = GATEWAY_CANARY;
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs.push(chunk.toString());
        done();
      },
    });
    kw = await startTestServer(
      {},
      { configFile: writeMcpConfig({ toolTimeoutMs: 2_000 }), logger: pino({ level: "debug" }, sink) },
    );
    await setUserCredential(kw, "alice", "cloud_key", ALICE_KEY);
    await setUserCredential(kw, "bob", "cloud_key", BOB_KEY);
    aliceSecret = await userKey(kw, "alice", ["mcp:cloud", "mcp:garbage"]);
    alice = await mcpClient(kw.url, "cloud", aliceSecret);
    bob = await mcpClient(kw.url, "cloud", await userKey(kw, "bob", ["mcp:cloud"]));
  });
  afterAll(async () => {
    delete process.env.KEYWARD_TEST_CANARY;
    await alice?.close();
    await bob?.close();
    await kw?.close();
  });

  const assertClean = (result: unknown) => {
    const json = JSON.stringify(result);
    for (const s of [ALICE_KEY, BOB_KEY]) for (const f of forms(s)) expect(json).not.toContain(f);
  };

  describe("the user comes from the token only", () => {
    it("ignores a user_id or credential name the model planted in the arguments", async () => {
      const r = await bob.callTool({
        name: "whoami",
        arguments: { user_id: "alice", name: "cloud_key", user: "alice" },
      });
      expect(textOf(r)).toContain(accountOf(BOB_KEY));
      expect(textOf(r)).not.toContain(accountOf(ALICE_KEY));
      const echoed = await bob.callTool({ name: "echo_args", arguments: { user_id: "alice", name: "cloud_key" } });
      expect(JSON.parse(textOf(echoed))).toEqual({ user_id: "alice", name: "cloud_key" });
    });

    it("ignores identity headers and _meta a client adds", async () => {
      const res = await post(
        kw,
        "cloud",
        await userKey(kw, "bob", ["mcp:cloud"]),
        {
          jsonrpc: "2.0",
          id: 1,
          method: "tools/call",
          params: { name: "whoami", arguments: {}, _meta: { user: "alice", user_id: "alice" } },
        },
        { "x-user-id": "alice", "x-keyward-user": "user:alice" },
      );
      expect(res.status).toBe(200);
      expect(textOf(res.body.result)).toContain(accountOf(BOB_KEY));
    });

    it("bob's calls never reach alice's credential, even interleaved", async () => {
      const calls = Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? alice : bob).callTool({ name: "slow", arguments: { ms: (i * 7) % 30 } }).then((r) => [i, r] as const),
      );
      for (const [i, r] of await Promise.all(calls)) {
        expect(textOf(r)).toContain(accountOf(i % 2 ? ALICE_KEY : BOB_KEY));
      }
    });

    it("a user with no credential of their own gets a tool error naming it, not someone else's", async () => {
      const carol = await mcpClient(kw.url, "cloud", await userKey(kw, "carol", ["mcp:cloud"]));
      try {
        const r = await carol.callTool({ name: "whoami", arguments: { user_id: "alice" } });
        expect(r.isError).toBe(true);
        expect(textOf(r)).toMatch(/^missing credential cloud_key: /);
        assertClean(r);
      } finally {
        await carol.close();
      }
    });
  });

  describe("who may call", () => {
    const ping = { jsonrpc: "2.0", id: 1, method: "ping" };

    it("no credential → 401 with WWW-Authenticate; an invalid one → 401", async () => {
      const none = await post(kw, "cloud", undefined, ping);
      expect(none.status).toBe(401);
      // SPEC §12: the challenge names the server's protected resource metadata.
      expect(none.headers.get("www-authenticate")).toBe(
        `Bearer realm="keyward", resource_metadata="${kw.url}/.well-known/oauth-protected-resource/mcp/cloud"`,
      );
      expect(none.body.error).toMatchObject({ code: "missing_credentials" });
      expect((await post(kw, "cloud", "kwk_notarealkey", ping)).status).toBe(401);
      expect((await post(kw, "cloud", "eyJhbGciOiJub25lIn0.e30.", ping)).body.error.code).toBe("invalid_token");
    });

    it("an agent's or a consumer's key → 403 scope_denied, whatever its scopes", async () => {
      expect((await kw.admin("POST", "/agents", { name: "helper", upstream: "http://127.0.0.1:9" })).status).toBe(201);
      expect((await kw.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
      for (const owner of ["agent:helper", "consumer:acme"]) {
        const k = await kw.admin("POST", "/keys", { owner, scopes: ["mcp:cloud", "mcp:*"] });
        const r = await post(kw, "cloud", k.body.secret, ping);
        expect(r.status).toBe(403);
        expect(r.body.error.code).toBe("scope_denied");
      }
    });

    it("a user without mcp:<server> → 403; mcp:* covers every server", async () => {
      const other = await userKey(kw, "alice", ["mcp:tickets", "agent:helper"]);
      const r = await post(kw, "cloud", other, ping);
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe("scope_denied");
      // alice holds mcp:cloud, not mcp:dead
      expect((await post(kw, "dead", aliceSecret, ping)).status).toBe(403);
      expect((await post(kw, "cloud", await userKey(kw, "alice", ["mcp:*"]), ping)).status).toBe(200);
    });

    it("an access token for the user works; one minted for an agent's audience does not", async () => {
      const key = await userKey(kw, "alice", ["mcp:cloud", "agent:helper"]);
      const own = await token(kw, { api_key: key });
      expect((await post(kw, "cloud", own, ping)).status).toBe(200);
      const forAgent = await token(kw, { api_key: key, audience: "helper" });
      const r = await post(kw, "cloud", forAgent, ping);
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe("invalid_token");
    });

    it("a revoked user key stops working on the next request", async () => {
      const k = await kw.admin("POST", "/keys", { owner: "user:alice", scopes: ["mcp:cloud"] });
      expect((await post(kw, "cloud", k.body.secret, ping)).status).toBe(200);
      await kw.admin("POST", `/keys/${k.body.key.id}/revoke`);
      expect((await post(kw, "cloud", k.body.secret, ping)).body.error.code).toBe("key_revoked");
    });
  });

  describe("what comes back is redacted", () => {
    it("a tool printing its environment, raw, base64 or otherwise encoded", async () => {
      for (const name of ["print_env", "print_env_b64", "print_env_encoded"]) {
        const r = await alice.callTool({ name, arguments: {} });
        expect(textOf(r)).toContain("[redacted]");
        assertClean(r);
      }
    });

    it("a tool piping its environment through `base64` (wrapped every 76 columns)", async () => {
      const r = await alice.callTool({ name: "print_env_b64_wrapped", arguments: {} });
      const printed = textOf(r);
      expect(printed).toContain("[redacted]");
      expect(printed).toContain("\n");
      // What a reader gets back by undoing the wrap and the encoding holds no key.
      const decoded = Buffer.from(printed.replaceAll("[redacted]", "").replace(/\s/g, ""), "base64").toString("latin1");
      expect(decoded).toContain("PATH=");
      for (const key of [ALICE_KEY, BOB_KEY]) expect(decoded).not.toContain(key.slice(2, 14));
    });

    it("a secret split across two text items", async () => {
      const r = await alice.callTool({ name: "split_secret", arguments: {} });
      expect(textOf(r)).toBe("key: [redacted] end");
      assertClean(r);
    });

    it("structuredContent (keys and values), resource text and blob bytes, and error messages", async () => {
      const r = await alice.callTool({ name: "structured", arguments: {} });
      expect(r.structuredContent).toEqual({ key: "[redacted]", nested: { "[redacted]": 1 } });
      const blob = (r.content as Array<{ resource?: { blob?: string } }>).find((c) => c.resource?.blob)?.resource?.blob;
      expect(Buffer.from(blob as string, "base64").toString()).toBe("bytes [redacted] bytes");
      assertClean(r);
      const failed = await alice.callTool({ name: "throw_secret", arguments: {} });
      expect(failed.isError).toBe(true);
      expect(textOf(failed)).toContain("[redacted]");
      assertClean(failed);
    });

    it("image and audio bytes (line-wrapped base64 too), resource links and their _meta", async () => {
      const r = await alice.callTool({ name: "media", arguments: {} });
      const [image, audio, link] = r.content as Array<Record<string, unknown>>;
      const bytes = (item: Record<string, unknown> | undefined) => Buffer.from(String(item?.data), "base64").toString();
      expect(bytes(image)).toBe("PNG [redacted] IEND");
      expect(bytes(audio)).toBe("RIFF.[redacted]");
      expect(link).toMatchObject({
        type: "resource_link",
        uri: "https://cloud.example/keys/[redacted]",
        name: "key [redacted]",
        description: "the link for [redacted]",
        _meta: { key: "[redacted]" },
      });
      assertClean(r);
    });

    it("tools/list too: an upstream writes its tool descriptions with the user's environment", async () => {
      const { tools } = await alice.listTools();
      expect(tools.find((t) => t.name === "keyed")?.description).toBe(
        "a tool whose description quotes its key: [redacted]",
      );
      assertClean(tools);
    });

    it("the child never gets the gateway's own environment", async () => {
      const env = JSON.parse(textOf(await alice.callTool({ name: "print_env", arguments: {} })));
      expect(env.KEYWARD_TEST_CANARY).toBeUndefined();
      expect(Object.keys(env).filter((k) => k.startsWith("KEYWARD_"))).toEqual([]);
      expect(JSON.stringify(env)).not.toContain(GATEWAY_CANARY);
      expect(env.CLOUD_KEY).toBe("[redacted]");
      expect(env.PATH).toBeDefined();
    });

    it("audit records and metrics never hold a value or a user id", async () => {
      const audit = await kw.admin("GET", "/audit?action=mcp.tool_call&limit=200");
      expect(audit.body.events.length).toBeGreaterThan(5);
      assertClean(audit.body);
      const metrics = await (await fetch(`${kw.url}/metrics`)).text();
      expect(metrics).toMatch(/keyward_mcp_tool_calls_total\{server="cloud",outcome="ok"\} \d+/);
      expect(metrics).not.toMatch(/alice|bob/);
      for (const f of forms(ALICE_KEY)) expect(metrics).not.toContain(f);
    });
  });

  describe("broken upstreams", () => {
    it("a hanging tool is timed out and the next call works", async () => {
      const r = await alice.callTool({ name: "hang", arguments: {} });
      expect(r).toEqual({
        isError: true,
        content: [{ type: "text", text: expect.stringMatching(/timed out after 2000 ms/) }],
      });
      expect(textOf(await alice.callTool({ name: "whoami", arguments: {} }))).toContain(accountOf(ALICE_KEY));
    });

    it("a crashing upstream gives a clean error and the next call works; operators see it in the log", async () => {
      const r = await alice.callTool({ name: "crash", arguments: {} });
      expect(r).toEqual({ isError: true, content: [{ type: "text", text: "the upstream MCP server exited" }] });
      expect(textOf(await alice.callTool({ name: "whoami", arguments: {} }))).toContain(accountOf(ALICE_KEY));
      const trouble = logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "MCP upstream trouble");
      expect(trouble).toContainEqual(
        expect.objectContaining({
          level: 40,
          component: "mcp",
          server: "cloud",
          reason: "the upstream MCP server exited",
        }),
      );
      const all = logs.join("");
      for (const s of [ALICE_KEY, BOB_KEY]) for (const f of forms(s)) expect(all).not.toContain(f);
    });

    it("an upstream speaking garbage gives a clean MCP error, mid-call or from the start", async () => {
      const r = await alice.callTool({ name: "garbage", arguments: {} });
      expect(textOf(r)).toMatch(/sent data that is not MCP/);
      expect(textOf(await alice.callTool({ name: "whoami", arguments: {} }))).toContain(accountOf(ALICE_KEY));
      const g = await mcpClient(kw.url, "garbage", aliceSecret);
      try {
        await expect(g.listTools()).rejects.toThrow(/sent data that is not MCP/);
        const call = await g.callTool({ name: "anything", arguments: {} });
        expect(call.isError).toBe(true);
        expect(textOf(call)).not.toContain("Welcome");
      } finally {
        await g.close();
      }
    });
  });
});

async function post(
  kw: TestServer,
  server: string,
  bearer: string | undefined,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${kw.url}/mcp/${server}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      ...headers,
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

async function token(kw: TestServer, body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${kw.url}/v1/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { access_token: string };
  if (res.status !== 200) throw new Error(`token: ${res.status} ${JSON.stringify(json)}`);
  return json.access_token;
}
