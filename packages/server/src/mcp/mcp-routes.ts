import { SLUG } from "@keyward/sdk/names";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Caller, CallerAuth } from "../auth/caller-auth.js";
import { mcpResourceMetadataUrl } from "../auth/mcp-resource.js";
import { codeToStatus, KeywardError } from "../errors.js";
import { readBody } from "../http/body.js";
import { allowAnyOrigin, registerPreflight } from "../http/cors.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import type { McpGateway } from "./mcp-gateway.js";
import { answerMcpPost, type StreamedCall } from "./mcp-jsonrpc.js";
import { openProgressStream } from "./mcp-progress-stream.js";
import { type McpCaller, toolAccess } from "./mcp-tool-access.js";

const SERVER_NAME = SLUG;

export interface McpRouteDeps {
  gateway: McpGateway;
  auth: CallerAuth;
  audit: AuditSink;
  issuer: () => string;
}

/**
 * `POST /mcp/{server}`: MCP Streamable HTTP, stateless (no session ids), JSON responses (an event
 * stream only for a tools/call asking for progress), so any replica answers any request; every
 * message is bound to the user from the token. `GET` (no server-initiated stream) and `DELETE`
 * (no sessions) → 405, as the MCP transport spec asks of a stateless server. HTTP-level refusals (auth, size, media type, malformed JSON) use the SPEC §4
 * body; once the body is JSON, MCP's own JSON-RPC errors (mcp-jsonrpc.ts).
 */
export function registerMcpRoutes(router: Router, deps: McpRouteDeps): void {
  // Browser-based MCP clients (the MCP Inspector's direct connection) call from their own page
  // with a bearer token, never a cookie (http/cors.ts).
  registerPreflight(
    router,
    "/mcp/:server",
    "POST",
    "authorization, content-type, accept, mcp-protocol-version, last-event-id",
  );
  router.on(["POST", "GET", "DELETE"], "/mcp/:server", async (ctx) => {
    allowAnyOrigin(ctx);
    const server = ctx.params.server as string;
    const caller = await authorize(ctx, server, deps);
    if (!deps.gateway.has(server)) throw new KeywardError("not_found", "no such MCP server");
    if (ctx.method !== "POST") {
      ctx.req.resume();
      throw new KeywardError(
        "method_not_allowed",
        "this MCP endpoint is stateless: send JSON-RPC messages with POST (no GET stream, no sessions to DELETE)",
        { allow: "POST" },
      );
    }
    const type = ctx.req.headers["content-type"] ?? "";
    if (!/^application\/json\b/i.test(type)) {
      ctx.req.resume();
      throw new KeywardError("unsupported_media_type", "MCP messages are sent as application/json");
    }
    const raw = await readBody(ctx.req);
    let message: unknown;
    try {
      message = JSON.parse(raw.toString("utf8"));
    } catch {
      throw new KeywardError("invalid_request", "request body is not valid JSON");
    }

    const reply = await answerMcpPost(
      message,
      ctx.req.headers,
      {
        listTools: (params) => deps.gateway.listTools(server, caller, params),
        callTool: (params, progress) =>
          deps.gateway.callTool(server, caller, params, { ip: ctx.peerIp, requestId: ctx.requestId }, progress),
      },
      { name: `keyward-mcp/${server}`, version: "0.1.0" },
    );
    if (reply.stream) return streamCall(ctx, reply.stream);
    if (reply.body === undefined) {
      ctx.res.writeHead(reply.status, { "x-request-id": ctx.requestId, "content-length": 0 }).end();
      return;
    }
    sendJson(ctx.res, reply.status, reply.body, { "x-request-id": ctx.requestId });
  });
}

/**
 * A tools/call with a progressToken, as `text/event-stream`: progress notifications (bounded,
 * mcp-progress-stream.ts), then the response, then the end. A client that hangs up cancels the
 * upstream call (the upstream gets notifications/cancelled); the call is still audited.
 */
async function streamCall(ctx: RequestContext, call: StreamedCall): Promise<void> {
  const stream = openProgressStream(ctx.res, { token: call.token, requestId: ctx.requestId });
  const hangUp = new AbortController();
  ctx.res.on("close", () => {
    if (!ctx.res.writableFinished) hangUp.abort();
  });
  const response = await call.run({ onProgress: (u) => stream.progress(u), signal: hangUp.signal });
  stream.finish(response);
}

/**
 * The user behind the caller and the tools its scopes reach: 401 without valid credentials (or a
 * token bound to another resource), 403 unless a user whose scopes reach some tool of `server`
 * (`mcp:*`, `mcp:<server>` or any `mcp:<server>:<tool>`, SPEC §12).
 *
 * Both carry the challenge an MCP client starts its OAuth flow from (RFC 9728 §5.1, RFC 6750
 * §3): where the server's Protected Resource Metadata is, and on 403 the scope it lacks. A server
 * name outside SLUG is never echoed (the header then names the realm only).
 */
async function authorize(ctx: RequestContext, server: string, deps: McpRouteDeps): Promise<McpCaller> {
  const named = SERVER_NAME.test(server);
  const metadata = named ? `, resource_metadata="${mcpResourceMetadataUrl(deps.issuer(), server)}"` : "";
  let caller: Caller;
  try {
    caller = await deps.auth.require(ctx, { kind: "mcp", server });
  } catch (err) {
    if (err instanceof KeywardError && codeToStatus(err.code) === 401) {
      throw new KeywardError(err.code, err.message, { "www-authenticate": `Bearer realm="keyward"${metadata}` });
    }
    throw err;
  }
  const denied = (message: string): never => {
    deps.audit.recordLater({
      actor: caller.principal,
      action: "mcp.access",
      ...(named ? { target: `mcp:${server}` } : {}),
      outcome: "denied",
      code: "scope_denied",
      ip: ctx.peerIp,
      requestId: ctx.requestId,
      details: { via: caller.via, key_id: caller.keyId },
    });
    const scope = named ? `, scope="mcp:${server}"` : "";
    throw new KeywardError("scope_denied", message, {
      "www-authenticate": `Bearer realm="keyward", error="insufficient_scope"${scope}${metadata}`,
    });
  };
  if (!caller.principal.startsWith("user:") || caller.principal.length === "user:".length) {
    return denied("the MCP gateway serves users: use a user's key or access token");
  }
  const tools = toolAccess(server, caller.scopeSet);
  if (tools === undefined) {
    return denied(`the credential lacks scope mcp:${named ? server : "<server>"} (or a per-tool scope of it)`);
  }
  return { user: caller.principal.slice("user:".length), tools };
}
