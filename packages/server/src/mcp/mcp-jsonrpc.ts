import type { IncomingHttpHeaders } from "node:http";
import {
  CallToolRequestSchema,
  ErrorCode,
  InitializeRequestSchema,
  isJSONRPCRequest,
  type JSONRPCMessage,
  JSONRPCMessageSchema,
  type JSONRPCRequest,
  LATEST_PROTOCOL_VERSION,
  ListToolsRequestSchema,
  McpError,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "@modelcontextprotocol/sdk/types.js";

/** An upstream progress update, as the client will see it (redacted by the gateway). */
export interface ToolProgress {
  progress: number;
  total?: number;
  message?: string;
}

/** What a tools/call answered as an event stream gets: where progress goes, and the client leaving. */
export interface ProgressSink {
  onProgress(update: ToolProgress): void;
  signal: AbortSignal;
}

/** The methods the gateway serves beyond the lifecycle ones; anything else is "method not found". */
export interface McpHandlers {
  listTools(params: { cursor?: string | undefined } | undefined): Promise<unknown>;
  callTool(
    params: { name: string; arguments?: Record<string, unknown> | undefined },
    progress?: ProgressSink,
  ): Promise<unknown>;
}

/**
 * A single tools/call whose params carry `_meta.progressToken`: answered as `text/event-stream`
 * (progress notifications, then the response). `run` never rejects: failures are JSON-RPC errors.
 */
export interface StreamedCall {
  token: string | number;
  run(progress: ProgressSink): Promise<unknown>;
}

export interface McpReply {
  status: number;
  /** Absent for 202 (only notifications or responses were sent), and for a streamed call. */
  body?: unknown;
  stream?: StreamedCall;
}

/** The SDK's transport allows this many messages in one batch; so do we. */
const MAX_BATCH = 100;

const jsonRpcError = (status: number, code: number, message: string): McpReply => ({
  status,
  body: { jsonrpc: "2.0", error: { code, message }, id: null },
});

/**
 * Answers one POST of MCP Streamable HTTP in stateless, JSON-response mode: the rules of the
 * SDK's StreamableHTTPServerTransport (Accept, protocol version, batches, 202 for notifications,
 * initialize alone) and its Server (initialize, ping, method-not-found), without building a
 * Server, a transport and a Web Request/Response per HTTP request. Building those cost 0.2 ms and
 * the Node ↔ Web conversion about 0.5 ms more per call, most of the gateway's budget (SPEC §8
 * bench: ≤ 2 ms added); the message schemas are still the SDK's.
 */
export async function answerMcpPost(
  raw: unknown,
  headers: IncomingHttpHeaders,
  handlers: McpHandlers,
  serverInfo: { name: string; version: string },
): Promise<McpReply> {
  const accept = headers.accept ?? "";
  // A client MUST accept both (MCP transport spec); we answer JSON except for a call with progress.
  if (!accept.includes("application/json") || !accept.includes("text/event-stream")) {
    return jsonRpcError(406, -32000, "Not Acceptable: Client must accept both application/json and text/event-stream");
  }
  if (Array.isArray(raw) && raw.length > MAX_BATCH) {
    return jsonRpcError(400, ErrorCode.InvalidRequest, `Invalid Request: Batch must not exceed ${MAX_BATCH} messages`);
  }
  const batch = Array.isArray(raw);
  const messages: JSONRPCMessage[] = [];
  for (const m of batch ? (raw as unknown[]) : [raw]) {
    const parsed = JSONRPCMessageSchema.safeParse(m);
    if (!parsed.success) return jsonRpcError(400, ErrorCode.ParseError, "Parse error: Invalid JSON-RPC message");
    messages.push(parsed.data);
  }
  if (batch && messages.length === 0)
    return jsonRpcError(400, ErrorCode.InvalidRequest, "Invalid Request: empty batch");
  const initializing = messages.some((m) => isJSONRPCRequest(m) && m.method === "initialize");
  if (initializing && messages.length > 1) {
    return jsonRpcError(400, ErrorCode.InvalidRequest, "Invalid Request: Only one initialization request is allowed");
  }
  const version = headers["mcp-protocol-version"];
  if (!initializing && typeof version === "string" && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
    return jsonRpcError(
      400,
      -32000,
      `Bad Request: Unsupported protocol version (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(", ")})`,
    );
  }
  const requests = messages.filter(isJSONRPCRequest);
  // Notifications (initialized, cancelled) and responses change nothing in a stateless gateway.
  if (requests.length === 0) return { status: 202 };
  // Only a lone tools/call asking for progress streams; everything else stays on the JSON path.
  const only = requests[0] as JSONRPCRequest;
  if (!batch && only.method === "tools/call") {
    const token = (only.params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
    if (typeof token === "string" || (typeof token === "number" && Number.isSafeInteger(token))) {
      return { status: 200, stream: { token, run: (progress) => answer(only, handlers, serverInfo, progress) } };
    }
  }
  const answers = await Promise.all(requests.map((r) => answer(r, handlers, serverInfo)));
  return { status: 200, body: batch ? answers : answers[0] };
}

async function answer(
  req: JSONRPCRequest,
  handlers: McpHandlers,
  serverInfo: { name: string; version: string },
  progress?: ProgressSink,
) {
  try {
    return { jsonrpc: "2.0", id: req.id, result: await dispatch(req, handlers, serverInfo, progress) };
  } catch (err) {
    const known = err instanceof McpError;
    return {
      jsonrpc: "2.0",
      id: req.id,
      error: {
        code: known ? err.code : ErrorCode.InternalError,
        // McpError messages are ours (or an upstream's, redacted); anything else stays inside.
        message: known ? err.message.replace(/^MCP error -?\d+: /, "") : "internal error",
      },
    };
  }
}

function dispatch(
  req: JSONRPCRequest,
  handlers: McpHandlers,
  serverInfo: { name: string; version: string },
  progress: ProgressSink | undefined,
) {
  switch (req.method) {
    case "initialize": {
      const { params } = parse(InitializeRequestSchema, req);
      const protocolVersion = SUPPORTED_PROTOCOL_VERSIONS.includes(params.protocolVersion)
        ? params.protocolVersion
        : LATEST_PROTOCOL_VERSION;
      return { protocolVersion, capabilities: { tools: {} }, serverInfo };
    }
    case "ping":
      return {};
    case "tools/list":
      return handlers.listTools(parse(ListToolsRequestSchema, req).params);
    case "tools/call":
      return handlers.callTool(parse(CallToolRequestSchema, req).params, progress);
    default:
      // Prompts, resources, completion, logging: not offered (capabilities say tools only).
      throw new McpError(ErrorCode.MethodNotFound, "Method not found");
  }
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, req: unknown): T {
  const r = schema.safeParse(req);
  if (!r.success) throw new McpError(ErrorCode.InvalidParams, "Invalid params");
  return r.data;
}
