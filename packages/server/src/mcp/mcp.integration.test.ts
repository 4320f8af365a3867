import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  accountOf,
  mcpClient,
  setUserCredential,
  textOf,
  userKey,
  writeMcpConfig,
} from "../../test-support/mcp/fixtures.js";
import { type HttpUpstream, startHttpUpstream, ticketsOf } from "../../test-support/mcp/http-upstream.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";

const ALICE_KEY = "AKIA-alice-0123456789-secret";
const BOB_KEY = "AKIA-bob-9876543210-secret";
const ALICE_TICKET = "tkt_alice_5f0c2e9d1b7a";

describe("MCP gateway: two users through the official MCP client", () => {
  let kw: TestServer;
  let tickets: HttpUpstream;
  let alice: Client;
  let bob: Client;

  beforeAll(async () => {
    tickets = await startHttpUpstream();
    kw = await startTestServer({}, { configFile: writeMcpConfig({ ticketsUrl: tickets.url }) });
    await setUserCredential(kw, "alice", "cloud_key", ALICE_KEY);
    await setUserCredential(kw, "bob", "cloud_key", BOB_KEY);
    await setUserCredential(kw, "alice", "ticket_token", ALICE_TICKET);
    alice = await mcpClient(kw.url, "cloud", await userKey(kw, "alice", ["mcp:cloud", "mcp:tickets"]));
    bob = await mcpClient(kw.url, "cloud", await userKey(kw, "bob", ["mcp:*"]));
  });
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await kw?.close();
    await tickets?.close();
  });

  it("each user sees the effect of their own credential and never its value", async () => {
    const [a, b] = await Promise.all([
      alice.callTool({ name: "whoami", arguments: {} }),
      bob.callTool({ name: "whoami", arguments: {} }),
    ]);
    expect(textOf(a)).toContain(accountOf(ALICE_KEY));
    expect(textOf(b)).toContain(accountOf(BOB_KEY));
    expect(textOf(a)).not.toContain(accountOf(BOB_KEY));
    for (const r of [a, b]) {
      expect(JSON.stringify(r)).not.toContain(ALICE_KEY);
      expect(JSON.stringify(r)).not.toContain(BOB_KEY);
    }
    // One process each, visible to operators; the tool-call counter labels servers, never users.
    const metrics = await (await fetch(`${kw.url}/metrics`)).text();
    expect(metrics).toMatch(/^keyward_mcp_upstreams\{kind="stdio"\} 2$/m);
    expect(metrics).toMatch(/^keyward_mcp_tool_calls_total\{server="cloud",outcome="ok"\} [1-9]/m);
    expect(metrics).not.toContain("alice");
  });

  it("a tool that prints its environment gets the user's value redacted", async () => {
    const r = await alice.callTool({ name: "print_env", arguments: {} });
    const env = JSON.parse(textOf(r));
    expect(env.CLOUD_KEY).toBe("[redacted]");
    expect(JSON.stringify(r)).not.toContain(ALICE_KEY);
  });

  it("tools/list passes the upstream's tools through", async () => {
    const { tools } = await alice.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(["whoami", "print_env", "hang", "crash", "structured"]));
    const structured = tools.find((t) => t.name === "structured");
    expect(structured?.outputSchema).toMatchObject({ type: "object" });
  });

  it("every call is audited under the user from the token, with the redaction count and no value", async () => {
    await bob.callTool({ name: "print_env", arguments: {} });
    const r = await kw.admin("GET", "/audit?action=mcp.tool_call&principal=user:bob&limit=50");
    expect(r.status).toBe(200);
    const events = r.body.events as Array<Record<string, unknown>>;
    const env = events.find((e) => (e.details as { tool?: string })?.tool === "print_env");
    expect(env).toMatchObject({ actor: "user:bob", target: "mcp:cloud", outcome: "success" });
    expect((env?.details as { redactions?: number } | undefined)?.redactions ?? 0).toBeGreaterThan(0);
    expect(JSON.stringify(r.body)).not.toContain(BOB_KEY);
  });

  it("an HTTP upstream gets the user's credential as a header; the result shows its effect only", async () => {
    const client = await mcpClient(kw.url, "tickets", await userKey(kw, "alice", ["mcp:tickets"]));
    try {
      const mine = await client.callTool({ name: "my_tickets", arguments: {} });
      expect(textOf(mine)).toBe(ticketsOf(`Bearer ${ALICE_TICKET}`));
      expect(tickets.seen).toContain(`Bearer ${ALICE_TICKET}`);
      const echoed = await client.callTool({ name: "echo_auth", arguments: {} });
      expect(textOf(echoed)).toBe("you sent Bearer [redacted]");
    } finally {
      await client.close();
    }
  });

  it("a user without the credential an HTTP upstream needs gets a tool error naming it", async () => {
    const client = await mcpClient(kw.url, "tickets", await userKey(kw, "bob", ["mcp:tickets"]));
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toContain("my_tickets");
      const r = await client.callTool({ name: "my_tickets", arguments: {} });
      expect(r.isError).toBe(true);
      expect(textOf(r)).toContain("missing credential ticket_token");
    } finally {
      await client.close();
    }
  });

  it("a credential change reaches the user's next call (their process restarts with the new value)", async () => {
    const NEW_KEY = "AKIA-bob-rotated-000111222";
    await setUserCredential(kw, "bob", "cloud_key", NEW_KEY);
    const r = await bob.callTool({ name: "whoami", arguments: {} });
    expect(textOf(r)).toContain(accountOf(NEW_KEY));
    const env = await bob.callTool({ name: "print_env", arguments: {} });
    expect(JSON.stringify(env)).not.toContain(NEW_KEY);
    expect(JSON.stringify(env)).not.toContain(BOB_KEY);
  });
});
