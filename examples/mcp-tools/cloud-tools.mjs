// An MCP server (stdio) with one tool, `list_functions`, that calls the cloud with the access key
// in its environment (ALIYUN_AK). It knows nothing about users: Keyward starts one process per
// user with that user's key in ALIYUN_AK, so "whose functions" is decided by which process
// answers, never by the arguments the model wrote.
//
//   FAKE_CLOUD_URL=http://127.0.0.1:4610 ALIYUN_AK=… node cloud-tools.mjs   (speaks MCP on stdin/stdout)
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const CLOUD_URL = process.env.FAKE_CLOUD_URL ?? "http://127.0.0.1:4610";

const server = new McpServer({ name: "cloud-tools", version: "0.1.0" });

server.registerTool(
  "list_functions",
  {
    title: "List cloud functions",
    description: "Lists the functions deployed in the signed-in user's cloud account.",
    inputSchema: {
      region: z
        .string()
        .regex(/^[a-z0-9-]{1,40}$/)
        .optional()
        .describe("Region id, e.g. cn-hangzhou"),
      // Models plant identities in arguments ("list bob's functions", user_id: "bob"). Accepted so
      // such a call does not fail validation, and never read: the account is the key's.
      user_id: z.string().optional().describe("Ignored: the account is always the signed-in user's"),
    },
  },
  async ({ region }) => {
    const key = process.env.ALIYUN_AK;
    if (!key) return { isError: true, content: [{ type: "text", text: "ALIYUN_AK is not set" }] };
    const url = new URL("/functions", CLOUD_URL);
    if (region) url.searchParams.set("region", region);
    let res;
    try {
      res = await fetch(url, { headers: { "x-acs-accesskey": key } });
    } catch (err) {
      return {
        isError: true,
        content: [{ type: "text", text: `cloud unreachable: ${err.cause?.code ?? err.message}` }],
      };
    }
    const text = await res.text();
    if (!res.ok) return { isError: true, content: [{ type: "text", text: `cloud answered ${res.status}: ${text}` }] };
    return { content: [{ type: "text", text }] };
  },
);

await server.connect(new StdioServerTransport());
