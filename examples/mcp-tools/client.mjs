// The agent's side: the official MCP SDK client talking to Keyward's `/mcp/cloud` with a user's
// key. It never sees a cloud access key: the user's own tool process holds it, and Keyward
// redacts it from whatever the tool answers.
//   node examples/mcp-tools/client.mjs     (starts the example, calls the tool as each user, stops)

import { pathToFileURL } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startExample } from "./start.mjs";

/**
 * An MCP client session on `mcpUrl` as the user whose Keyward key (or access token) is `key`.
 * `fetch` replaces the global one (e.g. to bound the connections a client opens).
 */
export async function connectAs(mcpUrl, key, { fetch } = {}) {
  const client = new Client({ name: "mcp-tools-example", version: "0.1.0" });
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
    requestInit: { headers: { authorization: `Bearer ${key}` } },
    ...(fetch ? { fetch } : {}),
  });
  await client.connect(transport);
  return client;
}

/** Lists the tools and calls `list_functions` with `args`, as one user. */
export async function listFunctionsAs(mcpUrl, key, args = {}) {
  const client = await connectAs(mcpUrl, key);
  try {
    const { tools } = await client.listTools();
    const result = await client.callTool({ name: "list_functions", arguments: args });
    return { tools: tools.map((t) => t.name), result };
  } finally {
    await client.close();
  }
}

/** The text of a tool result's content, joined. */
export function resultText(result) {
  return result.content
    .filter((c) => c.type === "text")
    .map((c) => c.text)
    .join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const example = await startExample();
  try {
    console.log(`MCP endpoint ${example.mcpUrl}`);
    // bob's model tries to get alice's functions by naming her: the argument changes nothing.
    const calls = [
      ["alice", {}],
      ["bob", { user_id: "alice" }],
      ["carol", {}],
    ];
    for (const [user, args] of calls) {
      const { tools, result } = await listFunctionsAs(example.mcpUrl, example.users[user].key, args);
      console.log(`${user}: tools ${tools.join(", ")}`);
      console.log(
        `${user}: list_functions ${JSON.stringify(args)} -> ${result.isError ? "error: " : ""}${resultText(result)}`,
      );
    }
  } finally {
    await example.close();
  }
}
