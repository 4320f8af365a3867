import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tool as langchainTool } from "@langchain/core/tools";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { FakeToolsServer } from "../../test-support/tools/fake-tools-server.js";
import { langchainSchema } from "../../test-support/tools/langchain-schema.js";
import { startTools } from "../../test-support/tools/setup.js";
import type { Keyward } from "../client/keyward.js";
import { DEFAULT_MARKER as M } from "../redaction/index.js";
import { langchainToolFunc, mcpToolHandler } from "./adapters.js";

const ALICE_AK = "canary-alice-ak-Qm4Xr8Vt2Lp6";
const BOB_AK = "canary-bob-ak-Hs1Ny5Kw9Jd3";

let fake: FakeToolsServer;
let kw: Keyward;
let closeTools: () => Promise<void>;
let alice: string;
let bob: string;

beforeEach(async () => {
  ({ fake, kw, close: closeTools } = await startTools());
  fake.granted = new Set(["cloud_ak", "ticket_token"]);
  alice = fake.addUser("alice", { cloud_ak: ALICE_AK });
  bob = fake.addUser("bob", { cloud_ak: BOB_AK });
});
afterEach(() => closeTools());

/** A tool whose answer shows whose credential it used (a fingerprint) and leaks the value too. */
function cloudTool() {
  return kw.tools.withUserCredentials(
    async (args: { region: string; credentials: Record<string, string> }, ctx) => {
      const ak = args.credentials.cloud_ak as string;
      if (args.region === "fail") throw new Error(`region refused for key ${ak}`);
      return { region: args.region, user: ctx.user, owner: ak.split("-")[1], leaked: ak };
    },
    { names: ["cloud_ak"], inject: "params", name: "list_functions" },
  );
}

describe("mcpToolHandler with the MCP SDK over Streamable HTTP (bearer token → authInfo)", () => {
  let http: Server;
  let url: URL;
  const clients: Client[] = [];

  beforeEach(async () => {
    const handler = mcpToolHandler(cloudTool());
    // Stateless Streamable HTTP: a server and transport per request, as the MCP SDK's examples do;
    // the bearer token becomes `req.auth`, which the SDK hands to tools as `extra.authInfo`.
    http = createServer(
      async (req: IncomingMessage & { auth?: { token: string; clientId: string; scopes: string[] } }, res) => {
        const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
        if (bearer) req.auth = { token: bearer, clientId: "test", scopes: [] };
        const server = new McpServer({ name: "cloud", version: "1.0.0" });
        server.registerTool(
          "list_functions",
          { description: "lists functions", inputSchema: { region: z.string() } },
          handler,
        );
        // No sessionIdGenerator: stateless.
        const transport = new StreamableHTTPServerTransport({});
        res.on("close", () => {
          void transport.close();
          void server.close();
        });
        await server.connect(transport);
        await transport.handleRequest(req, res);
      },
    );
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    url = new URL(`http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`);
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
  });

  async function connect(token?: string): Promise<Client> {
    const client = new Client({ name: "test-client", version: "1.0.0" });
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
    clients.push(client);
    return client;
  }

  it("two users call the same tool: each gets their own credential's effect and none of its value", async () => {
    const [a, b] = await Promise.all([connect(alice), connect(bob)]);
    const [ra, rb] = await Promise.all([
      a.callTool({ name: "list_functions", arguments: { region: "eu" } }),
      b.callTool({ name: "list_functions", arguments: { region: "us" } }),
    ]);
    expect(ra.isError).toBeFalsy();
    expect(ra.content).toEqual([
      { type: "text", text: JSON.stringify({ region: "eu", user: "user:alice", owner: "alice", leaked: M }) },
    ]);
    expect(rb.content).toEqual([
      { type: "text", text: JSON.stringify({ region: "us", user: "user:bob", owner: "bob", leaked: M }) },
    ]);
  });

  it("a tool error is an isError result with the redacted message", async () => {
    const client = await connect(alice);
    const res = await client.callTool({ name: "list_functions", arguments: { region: "fail" } });
    expect(res).toMatchObject({ isError: true, content: [{ type: "text", text: `region refused for key ${M}` }] });
  });

  it("no token, or a missing credential, is an isError result naming the problem", async () => {
    const anonymous = await connect();
    const res = await anonymous.callTool({ name: "list_functions", arguments: { region: "eu" } });
    expect(res).toMatchObject({ isError: true, content: [{ type: "text", text: expect.stringMatching(/userToken/) }] });

    const carol = fake.addUser("carol", {});
    const noCred = await (await connect(carol)).callTool({ name: "list_functions", arguments: { region: "eu" } });
    expect(noCred).toMatchObject({
      isError: true,
      content: [{ type: "text", text: expect.stringContaining("cloud_ak") }],
    });
  });
});

describe("mcpToolHandler over InMemoryTransport with a custom token source", () => {
  it("reads the user token where the option says, and passes a CallToolResult through", async () => {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const server = new McpServer({ name: "t", version: "1.0.0" });
    const wrapped = kw.tools.withUserCredentials(
      async (_a: { q: string }, ctx) => ({
        content: [{ type: "text" as const, text: `${ctx.headers.Authorization} for ${ctx.user}` }],
      }),
      { names: ["cloud_ak"], inject: "headers", name: "tickets" },
    );
    server.registerTool(
      "tickets",
      { inputSchema: { q: z.string() } },
      mcpToolHandler(wrapped, { userToken: () => bob }),
    );
    await server.connect(serverSide);
    const client = new Client({ name: "c", version: "1.0.0" });
    await client.connect(clientSide);
    const res = await client.callTool({ name: "tickets", arguments: { q: "x" } });
    expect(res.content).toEqual([{ type: "text", text: `Bearer ${M} for user:bob` }]);
    await client.close();
    await server.close();
  });
});

describe("langchainToolFunc with @langchain/core tool()", () => {
  function lcTool() {
    return langchainTool(langchainToolFunc(cloudTool()), {
      name: "list_functions",
      description: "Lists the user's cloud functions",
      schema: langchainSchema(z.object({ region: z.string() })),
    });
  }

  it("takes the user token from config.configurable, never from the model's input", async () => {
    const t = lcTool();
    const out = await t.invoke({ region: "eu", user_id: "bob", userToken: bob } as { region: string }, {
      configurable: { userToken: alice },
    });
    expect(JSON.parse(out as string)).toEqual({ region: "eu", user: "user:alice", owner: "alice", leaked: M });
  });

  it("as a tool call from a model, answers a ToolMessage without the value", async () => {
    const t = lcTool();
    const msg = await t.invoke(
      { type: "tool_call", id: "call_1", name: "list_functions", args: { region: "us" } },
      { configurable: { userToken: bob } },
    );
    expect(msg.tool_call_id).toBe("call_1");
    expect(String(msg.content)).not.toContain(BOB_AK);
    expect(JSON.parse(String(msg.content))).toMatchObject({ user: "user:bob", owner: "bob", leaked: M });
  });

  it("errors are thrown redacted; no token is an error before any request", async () => {
    const t = lcTool();
    await expect(t.invoke({ region: "fail" }, { configurable: { userToken: alice } })).rejects.toThrow(
      `region refused for key ${M}`,
    );
    const before = fake.bodies("/v1/tools/credentials").length;
    await expect(t.invoke({ region: "eu" })).rejects.toMatchObject({ code: "missing_user_token" });
    expect(fake.bodies("/v1/tools/credentials")).toHaveLength(before);
  });
});
