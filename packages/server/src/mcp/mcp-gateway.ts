import type { Redactor } from "@keyward/sdk/redaction";
import type { CallToolResult, ListToolsResult } from "@modelcontextprotocol/sdk/types.js";
import { CallToolResultSchema, ErrorCode, ListToolsResultSchema, McpError } from "@modelcontextprotocol/sdk/types.js";
import { AuditWriteError } from "../audit/audit-log.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { UserCredentialSource } from "../users/user-credential-source.js";
import type { ProgressSink, ToolProgress } from "./mcp-jsonrpc.js";
import { createUpstreamPool, PoolFullError, type UpstreamLease } from "./mcp-process-pool.js";
import { redactAcrossTextItems, redactJson } from "./mcp-redact.js";
import type { McpCaller } from "./mcp-tool-access.js";
import type { UpstreamSpec } from "./mcp-upstream-spec.js";
import { connectUpstream, type GatewayUpstream, UpstreamStartError } from "./mcp-upstreams.js";

/** How a tool call ended, as counted in metrics (a closed set). */
export type ToolCallOutcome =
  | "ok"
  | "tool_error"
  | "missing_credential"
  | "timeout"
  | "upstream_error"
  | "busy"
  | "cancelled"
  | "scope_denied"
  | "audit_unavailable";

export interface McpGatewayDeps {
  servers: ReadonlyMap<string, UpstreamSpec>;
  credentials: UserCredentialSource;
  audit: AuditSink;
  onToolCall?: (server: string, outcome: ToolCallOutcome) => void;
  toolTimeoutMs: number;
  /** How long an upstream may take to start and answer `initialize` (separate: cold starts are slow). */
  startTimeoutMs: number;
  maxProcesses: number;
  idleTimeoutMs: number;
  /** Calls (tools/call and tools/list) one user may have in flight on one server; default 64. */
  maxCallsPerUser?: number;
  /**
   * Hears every upstream that failed to start, crashed, timed out or misbehaved, and a full pool:
   * operators see them in the log (the reasons are our own fixed texts, never upstream output).
   */
  onUpstreamTrouble?: (server: string, reason: string) => void;
}

export interface CallContext {
  ip?: string;
  requestId?: string;
}

interface CallOutcome {
  outcome: ToolCallOutcome;
  result: CallToolResult;
  redactions: number;
}

const toolError = (text: string): CallToolResult => ({ isError: true, content: [{ type: "text", text }] });

/**
 * The MCP gateway's rules, transport-free: which upstream serves a user, with which credentials,
 * and what comes back (redacted) and gets recorded. The caller (its user and the tools its scopes
 * reach) always comes from the verified token; nothing in a request's params can change it.
 */
export function createMcpGateway(deps: McpGatewayDeps) {
  const { servers, credentials, audit, toolTimeoutMs } = deps;
  const connect = (server: string, _user: string, values: Readonly<Record<string, string>>, onGone: () => void) =>
    connectUpstream(servers.get(server) as UpstreamSpec, values, { timeoutMs: deps.startTimeoutMs, onGone });
  // Only processes are capped: an HTTP upstream's client holds no more than a few sockets.
  const processes = createUpstreamPool<GatewayUpstream>({
    max: deps.maxProcesses,
    idleTimeoutMs: deps.idleTimeoutMs,
    connect,
  });
  const clients = createUpstreamPool<GatewayUpstream>({
    max: Number.POSITIVE_INFINITY,
    idleTimeoutMs: deps.idleTimeoutMs,
    connect,
  });
  credentials.onChange((user) => {
    processes.retireUser(user);
    clients.retireUser(user);
  });
  const poolFor = (spec: UpstreamSpec) => (spec.kind === "stdio" ? processes : clients);

  // One user's flood of calls would otherwise queue without bound on their upstream (and each
  // answer may be up to 16 MiB): past the cap, a call is refused at once, never queued.
  const maxCallsPerUser = deps.maxCallsPerUser ?? 64;
  const inflight = new Map<string, number>();
  function admit(server: string, user: string): (() => void) | undefined {
    const key = `${server}\u0000${user}`;
    const n = inflight.get(key) ?? 0;
    if (n >= maxCallsPerUser) return undefined;
    inflight.set(key, n + 1);
    return () => {
      const left = (inflight.get(key) ?? 1) - 1;
      if (left === 0) inflight.delete(key);
      else inflight.set(key, left);
    };
  }
  const busyText = `too many of your calls are in flight on this MCP server (at most ${maxCallsPerUser}); try again shortly`;

  function specOf(server: string): UpstreamSpec {
    const spec = servers.get(server);
    if (!spec) throw new McpError(ErrorCode.InvalidRequest, `no MCP server named ${server}`);
    return spec;
  }

  /**
   * The values of those of the server's credentials the user has set: listing tools needs no
   * credential, and an upstream started for it keeps running for calls once all are there.
   */
  async function availableValues(user: string, names: readonly string[]): Promise<Record<string, string>> {
    let wanted = [...names];
    while (wanted.length > 0) {
      const r = await credentials.resolve(user, wanted);
      if (r.ok) return r.values;
      wanted = wanted.filter((n) => n !== r.missing);
    }
    return {};
  }

  /** Runs `fn` on the user's upstream with the call timeout; a timed-out upstream is stopped. */
  async function onUpstream<T>(
    spec: UpstreamSpec,
    user: string,
    values: Record<string, string>,
    fn: (u: GatewayUpstream) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<
    | { ok: true; value: T; upstream: GatewayUpstream }
    | { ok: false; reason: string; timeout: boolean; cancelled?: true }
  > {
    let lease: UpstreamLease<GatewayUpstream>;
    try {
      lease = await poolFor(spec).acquire(spec.name, user, values);
    } catch (err) {
      if (err instanceof PoolFullError || err instanceof UpstreamStartError) {
        deps.onUpstreamTrouble?.(spec.name, err.message);
        return { ok: false, reason: err.message, timeout: false };
      }
      throw err;
    }
    try {
      const value = await fn(lease.upstream);
      lease.release();
      return { ok: true, value, upstream: lease.upstream };
    } catch (err) {
      // The SDK rejects an aborted request with the abort's reason: our own object, not a timeout.
      // The upstream was sent notifications/cancelled; its process stays, it did nothing wrong.
      if (signal?.aborted && err === signal.reason) {
        lease.release();
        return { ok: false, reason: "the client went away; the call was cancelled", timeout: false, cancelled: true };
      }
      if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) {
        lease.discard();
        const reason = `the tool timed out after ${toolTimeoutMs} ms; its server was restarted`;
        deps.onUpstreamTrouble?.(spec.name, reason);
        return { ok: false, reason, timeout: true };
      }
      lease.release();
      const fault = lease.upstream.fault();
      if (fault !== undefined || !(err instanceof McpError) || err.code === ErrorCode.ConnectionClosed) {
        const reason = fault ?? "the upstream MCP server failed";
        deps.onUpstreamTrouble?.(spec.name, reason);
        return { ok: false, reason, timeout: false };
      }
      // The upstream answered with a JSON-RPC error (unknown tool, bad params): pass it on, redacted.
      const message = lease.upstream.redactor.redactString(err.message.replace(/^MCP error -?\d+: /, "")).output;
      throw new McpError(err.code, message);
    }
  }

  /** A tools/call on the user's upstream, its result redacted; how it ended, for audit and metrics. */
  async function runCall(
    spec: UpstreamSpec,
    user: string,
    params: { name: string; arguments?: Record<string, unknown> | undefined },
    progress: ProgressSink | undefined,
  ): Promise<CallOutcome> {
    const lookup = await credentials.resolve(user, spec.credentials);
    if (!lookup.ok) {
      return {
        outcome: "missing_credential",
        result: toolError(
          `missing credential ${lookup.missing}: this tool needs your ${lookup.missing}; ask your Keyward admin to set it, or set it yourself (PUT /v1/users/me/credentials/${lookup.missing})`,
        ),
        redactions: 0,
      };
    }
    // Only name and arguments go upstream: the client's `_meta` is not the upstream's business.
    // For progress the upstream gets a token of ours (mcp-upstream-progress.ts) and its updates
    // are answered with the client's. tool_timeout_ms stays a hard limit: progress does not extend
    // it, so an upstream that reports forever cannot hold a call, a process and a stream forever.
    let progressRedactions = 0;
    const signal = progress ? ownAbort(progress.signal) : undefined;
    const r = await onUpstream(
      spec,
      user,
      lookup.values,
      (u) => {
        const plain = { name: params.name, arguments: params.arguments ?? {} };
        if (!progress || !signal) {
          return u.client.request({ method: "tools/call", params: plain }, CallToolResultSchema, {
            timeout: toolTimeoutMs,
          });
        }
        const route = u.progress.open((p) => {
          const relayed = redactProgress(p, u.redactor);
          progressRedactions += relayed.count;
          if (relayed.update) progress.onProgress(relayed.update);
        });
        return u.client
          .request(
            { method: "tools/call", params: { ...plain, _meta: { progressToken: route.token } } },
            CallToolResultSchema,
            { timeout: toolTimeoutMs, signal },
          )
          .finally(route.close);
      },
      signal,
    );
    if (!r.ok) {
      const outcome = r.cancelled ? "cancelled" : r.timeout ? "timeout" : "upstream_error";
      return { outcome, result: toolError(r.reason), redactions: progressRedactions };
    }
    const redacted = redactJson(r.value as CallToolResult, r.upstream.redactor);
    const joined = redactAcrossTextItems(redacted.value.content ?? [], r.upstream.redactor);
    const result = { ...redacted.value, content: joined.content as CallToolResult["content"] };
    return {
      outcome: result.isError ? "tool_error" : "ok",
      result,
      redactions: redacted.count + joined.count + progressRedactions,
    };
  }

  return {
    has: (server: string) => servers.has(server),

    /** The upstream's tools/list page, narrowed to the tools the caller may call (cursors kept). */
    async listTools(
      server: string,
      caller: McpCaller,
      params: { cursor?: string | undefined } | undefined,
    ): Promise<ListToolsResult> {
      const { user, tools } = caller;
      const spec = specOf(server);
      const done = admit(server, user);
      if (!done) throw new McpError(ErrorCode.InternalError, busyText);
      try {
        const values = await availableValues(user, spec.credentials);
        const r = await onUpstream(spec, user, values, (u) =>
          u.client.request(
            { method: "tools/list", params: params?.cursor ? { cursor: params.cursor } : {} },
            ListToolsResultSchema,
            { timeout: toolTimeoutMs },
          ),
        );
        if (!r.ok) throw new McpError(ErrorCode.InternalError, r.reason);
        const page = redactJson(r.value, r.upstream.redactor).value;
        return tools.every ? page : { ...page, tools: page.tools.filter((t) => tools.refusal(t.name) === undefined) };
      } finally {
        done();
      }
    },

    /**
     * A tools/call for the caller. A tool its scopes do not reach is refused before anything else
     * (a tool error naming the missing scope, audited as denied): the upstream never sees it.
     */
    async callTool(
      server: string,
      caller: McpCaller,
      params: { name: string; arguments?: Record<string, unknown> | undefined },
      ctx: CallContext = {},
      progress?: ProgressSink,
    ): Promise<CallToolResult> {
      const { user } = caller;
      const spec = specOf(server);
      const refusal = caller.tools.refusal(params.name);
      if (refusal !== undefined) {
        audit.recordLater({
          actor: `user:${user}`,
          action: "mcp.tool_call",
          target: `mcp:${server}`,
          outcome: "denied",
          code: "scope_denied",
          ...(ctx.ip !== undefined ? { ip: ctx.ip } : {}),
          ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}),
          details: { tool: params.name.slice(0, 128) },
        });
        deps.onToolCall?.(server, "scope_denied");
        return toolError(refusal);
      }
      const done = admit(server, user);
      let call: CallOutcome;
      try {
        call = done
          ? await runCall(spec, user, params, progress)
          : { outcome: "busy", result: toolError(busyText), redactions: 0 };
      } finally {
        done?.();
      }
      const { outcome, result, redactions } = call;
      try {
        await audit.recordToken({
          actor: `user:${user}`,
          action: "mcp.tool_call",
          target: `mcp:${server}`,
          outcome: outcome === "ok" ? "success" : "failure",
          ...(outcome !== "ok" ? { code: outcome } : {}),
          ...(ctx.ip !== undefined ? { ip: ctx.ip } : {}),
          ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}),
          details: { tool: params.name.slice(0, 128), redactions },
        });
      } catch (err) {
        if (!(err instanceof AuditWriteError)) throw err;
        deps.onToolCall?.(server, "audit_unavailable");
        throw new McpError(ErrorCode.InternalError, "the audit log is unavailable; the tool result was withheld");
      }
      deps.onToolCall?.(server, outcome);
      return result;
    },

    /** Upstreams alive now (tests, metrics). */
    get liveUpstreams(): number {
      return processes.size + clients.size;
    },
    upstreamCounts: () => ({ stdio: processes.size, http: clients.size }),

    async close(): Promise<void> {
      await Promise.all([processes.close(), clients.close()]);
    },
  };
}

export type McpGateway = ReturnType<typeof createMcpGateway>;

/**
 * Follows the client's signal with a reason of our own: the SDK rejects an aborted request with
 * its reason when that is an McpError (anything else becomes a "timeout"), so identity tells a
 * cancelled call from a timed-out one, whose process must be killed.
 */
function ownAbort(client: AbortSignal): AbortSignal {
  const ac = new AbortController();
  const reason = new McpError(ErrorCode.ConnectionClosed, "the client went away");
  if (client.aborted) ac.abort(reason);
  else client.addEventListener("abort", () => ac.abort(reason), { once: true });
  return ac.signal;
}

/**
 * A progress update rebuilt from its known fields (the upstream's `_meta` and extras stay behind),
 * its message redacted like a result (it is upstream-written text). A number whose digits hold a
 * secret cannot become the marker (the field must stay a number): that update is dropped.
 */
function redactProgress(
  p: { progress: number; total?: number | undefined; message?: string | undefined },
  redactor: Redactor,
): { update?: ToolProgress; count: number } {
  if (!redactor.active) {
    return {
      update: {
        progress: p.progress,
        ...(p.total !== undefined ? { total: p.total } : {}),
        ...(p.message !== undefined ? { message: p.message } : {}),
      },
      count: 0,
    };
  }
  let count = 0;
  for (const n of [p.progress, p.total]) {
    if (n !== undefined) count += redactor.redactString(String(n)).count;
  }
  if (count > 0) return { count };
  const message = p.message === undefined ? undefined : redactor.redactString(p.message);
  return {
    update: {
      progress: p.progress,
      ...(p.total !== undefined ? { total: p.total } : {}),
      ...(message !== undefined ? { message: message.output } : {}),
    },
    count: message?.count ?? 0,
  };
}
