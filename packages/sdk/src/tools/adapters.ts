/**
 * Adapters from a wrapped tool to the tool shapes of common frameworks. The SDK depends on neither
 * framework: the types below are the structural parts of their APIs that the adapters touch
 * (@modelcontextprotocol/sdk 1.x `McpServer.registerTool`, @langchain/core `tool()`).
 */
import { TextDecoder } from "node:util";
import type { ToolCallContext } from "./types.js";

/** A wrapped tool, or anything shaped like one. */
export type ToolCall<A> = (args: A, ctx: ToolCallContext) => Promise<unknown>;

/** The parts of MCP's `RequestHandlerExtra` the adapter reads. */
export interface McpRequestExtra {
  signal?: AbortSignal;
  /** Set by the MCP SDK's bearer-auth middleware: the verified request token. */
  authInfo?: { token?: string };
}

/** MCP's `CallToolResult`, as much of it as the adapter produces. */
export interface McpCallToolResult {
  [key: string]: unknown;
  content: { type: "text"; text: string }[];
  isError?: boolean;
}

/** The parts of LangChain's `RunnableConfig` the adapter reads. */
export interface LangChainToolConfig {
  configurable?: Record<string, unknown>;
  signal?: AbortSignal;
}

const streamLike = (v: unknown): v is AsyncIterable<unknown> =>
  typeof v === "object" && v !== null && Symbol.asyncIterator in v;

/** A (redacted) result as text for a model: strings as they are, bytes as UTF-8, streams read whole, the rest JSON. */
async function toText(result: unknown): Promise<string> {
  if (typeof result === "string") return result;
  if (result === undefined || result === null) return "";
  if (result instanceof Uint8Array) return Buffer.from(result).toString("utf8");
  if (streamLike(result)) {
    const decoder = new TextDecoder();
    let text = "";
    for await (const chunk of result) {
      if (typeof chunk === "string") text += chunk;
      else if (chunk instanceof Uint8Array) text += decoder.decode(chunk, { stream: true });
      else text += `${JSON.stringify(chunk)}\n`;
    }
    return text + decoder.decode();
  }
  return JSON.stringify(result) ?? String(result);
}

const isCallToolResult = (v: unknown): v is McpCallToolResult =>
  typeof v === "object" && v !== null && Array.isArray((v as { content?: unknown }).content);

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * An MCP tool handler `(args, extra) => CallToolResult` for `McpServer.registerTool(name, {inputSchema}, handler)`
 * (register it with an `inputSchema`: without one the MCP SDK calls handlers with `extra` only).
 * The user token comes from `extra.authInfo.token` (the MCP SDK's bearer auth) unless `userToken`
 * says otherwise; the result becomes one text content (strings as they are, other values as
 * JSON, a `CallToolResult` the tool built itself passes through), and any failure (a missing
 * credential, a refused token, the tool's own error, a timeout) a result with `isError: true`
 * and the redacted message, so the model sees what went wrong and never a value.
 *
 * @example
 * ```ts
 * import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
 * import { z } from "zod";
 *
 * const listFunctions = kw.tools.withUserCredentials(listFunctionsImpl, { names: ["aliyun_ak"], inject: "env" });
 * server.registerTool("list_functions", { inputSchema: { region: z.string() } }, mcpToolHandler(listFunctions));
 * ```
 */
export function mcpToolHandler<A, E extends McpRequestExtra = McpRequestExtra>(
  wrapped: ToolCall<A>,
  opts: { userToken?: (extra: E) => string | undefined } = {},
): (args: A, extra: E) => Promise<McpCallToolResult> {
  const tokenOf = opts.userToken ?? ((extra: E) => extra?.authInfo?.token);
  return async (args, extra) => {
    try {
      const result = await wrapped(args, { userToken: tokenOf(extra) ?? "", signal: extra?.signal });
      if (isCallToolResult(result)) return result;
      return { content: [{ type: "text", text: await toText(result) }] };
    } catch (err) {
      return { isError: true, content: [{ type: "text", text: messageOf(err) }] };
    }
  };
}

/**
 * A LangChain.js tool function `(input, config) => Promise<string>` for `tool(func, {name,
 * description, schema})` of `@langchain/core/tools`. The user token comes from
 * `config.configurable.userToken` (set by the application when it invokes the agent), never from
 * the model's input. The result is text (strings as they are, other values as JSON); errors are
 * thrown, redacted, for LangChain's own tool-error handling.
 *
 * @example
 * ```ts
 * import { tool } from "@langchain/core/tools";
 * import { z } from "zod";
 *
 * const listFunctions = tool(langchainToolFunc(kw.tools.withUserCredentials(impl, { names: ["aliyun_ak"], inject: "params" })), {
 *   name: "list_functions",
 *   description: "Lists the user's cloud functions",
 *   schema: z.object({ region: z.string() }),
 * });
 * await agent.invoke(messages, { configurable: { userToken } });
 * ```
 */
export function langchainToolFunc<A, C extends LangChainToolConfig = LangChainToolConfig>(
  wrapped: ToolCall<A>,
  opts: { userToken?: (config: C | undefined) => string | undefined } = {},
): (input: A, config?: C) => Promise<string> {
  const tokenOf =
    opts.userToken ??
    ((config: C | undefined) => {
      const t = config?.configurable?.userToken;
      return typeof t === "string" ? t : undefined;
    });
  return async (input, config) => {
    const result = await wrapped(input, { userToken: tokenOf(config) ?? "", signal: config?.signal });
    return toText(result);
  };
}
