// Types for client.mjs (plain JavaScript, so the example runs with node alone).
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js";

/** What `client.callTool()` resolves with. */
export type ToolResult = Awaited<ReturnType<Client["callTool"]>>;

/**
 * An MCP client session on `mcpUrl` as the user whose Keyward key (or access token) is `key`.
 * `fetch` replaces the global one (e.g. to bound the connections a client opens).
 */
export function connectAs(mcpUrl: string, key: string, opts?: { fetch?: FetchLike }): Promise<Client>;

/** Lists the tools and calls `list_functions` with `args`, as one user. */
export function listFunctionsAs(
  mcpUrl: string,
  key: string,
  args?: Record<string, unknown>,
): Promise<{ tools: string[]; result: ToolResult }>;

/** The text of a tool result's content, joined. */
export function resultText(result: ToolResult): string;
