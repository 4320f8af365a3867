import http from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { memoryCredentials, stdioSpec, textOf } from "../../test-support/mcp/fixtures.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { createMcpGateway, type McpGateway } from "./mcp-gateway.js";
import { type McpCaller, TOOL_NAME, toolAccess } from "./mcp-tool-access.js";

/**
 * Per-tool scopes (SPEC §12) at the gateway: which tools a set of scopes reaches, tools/list
 * narrowed page by page (cursors kept), and a call to another tool refused before any upstream
 * hears of it.
 */
const set = (...s: string[]) => new Set(s);

describe("toolAccess: what a credential's scopes reach on a server", () => {
  it("mcp:* and mcp:<server> reach every tool", () => {
    expect(toolAccess("cloud", set("mcp:*"))?.every).toBe(true);
    expect(toolAccess("cloud", set("mcp:cloud"))?.every).toBe(true);
  });

  it("per-tool scopes reach their tools only; the refusal names the missing scope", () => {
    const access = toolAccess("cloud", set("mcp:cloud:whoami", "mcp:other:pid", "agent:*"));
    expect(access?.every).toBe(false);
    expect(access?.refusal("whoami")).toBeUndefined();
    expect(access?.refusal("pid")).toContain("mcp:cloud:pid");
  });

  it("nothing of this server: no access (another server's scope, a longer name, mcp:cloud as a prefix)", () => {
    for (const held of [set("mcp:other"), set("mcp:other:whoami"), set("mcp:cloudy:whoami", "mcp:cloudy"), set()]) {
      expect(toolAccess("cloud", held)).toBeUndefined();
    }
  });

  it("a tool name outside the rule is refused without being repeated, at the length bound exactly", () => {
    const access = toolAccess("cloud", set(`mcp:cloud:${"a".repeat(128)}`));
    expect(access?.refusal("a".repeat(128))).toBeUndefined();
    for (const bad of ["a".repeat(129), "", "who ami", "who:ami", "wh\u00f6ami", "x\ny", "$(id)"]) {
      expect(TOOL_NAME.test(bad), bad).toBe(false);
      const why = access?.refusal(bad) ?? "";
      expect(why).toMatch(/not a valid tool name/);
      if (bad.length > 1) expect(why).not.toContain(bad);
    }
  });
});

/** An HTTP MCP upstream listing tools two per page, and recording every request it hears. */
async function pagingUpstream() {
  const heard: string[] = [];
  const names = ["alpha", "beta", "gamma", "delta", "epsilon"];
  const server = http.createServer((req, res) => {
    const mcp = new Server({ name: "paging", version: "1.0.0" }, { capabilities: { tools: {} } });
    mcp.setRequestHandler(ListToolsRequestSchema, (r) => {
      const start = Number(r.params?.cursor ?? 0);
      heard.push(`tools/list ${start}`);
      const page = names.slice(start, start + 2).map((name) => ({ name, inputSchema: { type: "object" as const } }));
      return { tools: page, ...(start + 2 < names.length ? { nextCursor: String(start + 2) } : {}) };
    });
    mcp.setRequestHandler(CallToolRequestSchema, (r) => {
      heard.push(`tools/call ${r.params.name}`);
      return { content: [{ type: "text", text: `ran ${r.params.name}` }] };
    });
    const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true });
    res.on("close", () => void transport.close());
    void mcp.connect(transport).then(() => transport.handleRequest(req, res));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    heard,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe("the gateway with a per-tool caller", () => {
  let up: Awaited<ReturnType<typeof pagingUpstream>>;
  let gateway: McpGateway | undefined;
  beforeAll(async () => {
    up = await pagingUpstream();
  });
  afterAll(() => up?.close());
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });

  const build = (audit = recordingAudit(), outcomes: string[] = []) => {
    gateway = createMcpGateway({
      servers: new Map([
        ["paging", { kind: "http", name: "paging", url: up.url, headers: {}, credentials: [] }],
        ["cloud", stdioSpec()],
      ]),
      credentials: memoryCredentials(),
      audit,
      onToolCall: (_server, outcome) => outcomes.push(outcome),
      toolTimeoutMs: 5000,
      startTimeoutMs: 15_000,
      maxProcesses: 5,
      idleTimeoutMs: 60_000,
    });
    return gateway;
  };
  const caller = (server: string, ...scopes: string[]): McpCaller => ({
    user: "carol",
    tools: toolAccess(server, new Set(scopes)) as NonNullable<ReturnType<typeof toolAccess>>,
  });

  it("tools/list shows only the caller's tools on every page, and the cursors still lead through all pages", async () => {
    const gw = build();
    const carol = caller("paging", "mcp:paging:beta", "mcp:paging:epsilon");
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await gw.listTools("paging", carol, cursor === undefined ? undefined : { cursor });
      pages.push(page.tools.map((t) => t.name));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(pages).toEqual([["beta"], [], ["epsilon"]]);
    const all = await gw.listTools("paging", caller("paging", "mcp:paging"), undefined);
    expect(all.tools.map((t) => t.name)).toEqual(["alpha", "beta"]);
  });

  it("a call to another tool is a tool error naming the missing scope, audited denied, never sent upstream", async () => {
    const audit = recordingAudit();
    const outcomes: string[] = [];
    const gw = build(audit, outcomes);
    const carol = caller("paging", "mcp:paging:beta");
    const before = up.heard.length;
    const r = await gw.callTool("paging", carol, { name: "alpha" }, { requestId: "req-9", ip: "10.0.0.9" });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain("mcp:paging:alpha");
    expect(up.heard.length).toBe(before);
    expect(outcomes).toEqual(["scope_denied"]);
    expect(audit.events).toEqual([
      {
        actor: "user:carol",
        action: "mcp.tool_call",
        target: "mcp:paging",
        outcome: "denied",
        code: "scope_denied",
        ip: "10.0.0.9",
        requestId: "req-9",
        details: { tool: "alpha" },
      },
    ]);
    // control: its own tool goes through
    expect(textOf(await gw.callTool("paging", carol, { name: "beta" }))).toBe("ran beta");
    expect(up.heard.slice(before)).toEqual(["tools/call beta"]);
  });

  it("a refused call starts no upstream process", async () => {
    const gw = build();
    const r = await gw.callTool("cloud", caller("cloud", "mcp:cloud:whoami"), { name: "print_env" });
    expect(textOf(r)).toContain("mcp:cloud:print_env");
    expect(gw.liveUpstreams).toBe(0);
  });
});
