import { createRedactor, type Redactor } from "@keyward/sdk/redaction";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ChildStdioTransport } from "./child-stdio-transport.js";
import { guardedFetch, type HttpViolation } from "./mcp-http-fetch.js";
import type { PooledUpstream } from "./mcp-process-pool.js";
import { createProgressRouter, type ProgressRouter } from "./mcp-upstream-progress.js";
import { childEnv, type UpstreamSpec, upstreamHeaders } from "./mcp-upstream-spec.js";

/** A connected upstream for one user, with the redactor for the values it was given. */
export interface GatewayUpstream extends PooledUpstream {
  client: Client;
  redactor: Redactor;
  /** Routes the upstream's progress notifications to the call that asked (by our own token). */
  progress: ProgressRouter;
  /** Set once it has stopped working: what the caller is told. Never upstream-written text. */
  fault(): string | undefined;
}

/** An upstream that could not be started; the message is ours, safe to show. */
export class UpstreamStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UpstreamStartError";
  }
}

const CLIENT_INFO = { name: "keyward-mcp-gateway", version: "0.1.0" };

/** The most one upstream message may take (a stdout line, a JSON body, an SSE event). */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

const FAULT_TEXT = {
  exited: "the upstream MCP server exited",
  invalid_output: "the upstream MCP server sent data that is not MCP; it was stopped",
  oversized: `the upstream MCP server sent a message over ${MAX_MESSAGE_BYTES / 1024 / 1024} MiB; it was stopped`,
  stalled: "the upstream MCP server stopped reading its input; it was stopped",
  killed: "the upstream MCP server was stopped",
} as const;

const HTTP_FAULT_TEXT: Record<HttpViolation, string> = {
  redirect: "the upstream MCP server answered with a redirect, which is not followed (configure its final URL)",
  oversized: FAULT_TEXT.oversized,
};

export async function connectUpstream(
  spec: UpstreamSpec,
  values: Readonly<Record<string, string>>,
  opts: { timeoutMs: number; onGone: () => void },
): Promise<GatewayUpstream> {
  const redactor = createRedactor(Object.values(values));
  const progress = createProgressRouter();
  // No capabilities: an upstream asking us for sampling, roots or elicitation gets "method not found".
  const client = new Client(CLIENT_INFO, { capabilities: {} });
  // Upstream-written error text may hold secrets; nothing here logs it.
  client.onerror = () => {};
  let gone = false;
  client.onclose = () => {
    gone = true;
    opts.onGone();
  };

  if (spec.kind === "stdio") {
    const transport = new ChildStdioTransport({
      command: spec.command,
      args: spec.args,
      env: childEnv(spec, values),
      cwd: spec.cwd,
    });
    try {
      await client.connect(transport, { timeout: opts.timeoutMs });
    } catch (err) {
      transport.kill("killed");
      const fault = transport.fault;
      const why =
        fault !== undefined && fault !== "killed" && fault !== "exited" ? FAULT_TEXT[fault] : startFailure(err);
      throw new UpstreamStartError(why);
    }
    progress.intercept(transport);
    return {
      client,
      redactor,
      progress,
      fault: () => (gone ? FAULT_TEXT[transport.fault ?? "exited"] : undefined),
      kill: () => transport.kill("killed"),
      close: () => transport.close(),
    };
  }

  let headers: Record<string, string>;
  try {
    headers = upstreamHeaders(spec, values);
  } catch (err) {
    throw new UpstreamStartError((err as Error).message);
  }
  let violation: HttpViolation | undefined;
  const guarded = guardedFetch({
    maxMessageBytes: MAX_MESSAGE_BYTES,
    onViolation: (why) => {
      violation ??= why;
      // Closing fails the calls in flight at once (instead of at their timeout) and retires it.
      void transport.close().catch(() => {});
    },
  });
  const transport = new StreamableHTTPClientTransport(new URL(spec.url), { requestInit: { headers }, fetch: guarded });
  try {
    await client.connect(transport, { timeout: opts.timeoutMs });
  } catch (err) {
    await transport.close().catch(() => {});
    const why =
      violation !== undefined
        ? HTTP_FAULT_TEXT[violation]
        : /timed out|timeout/i.test((err as Error)?.message ?? "")
          ? "the upstream MCP server did not answer initialize in time"
          : "the upstream MCP server is unavailable";
    throw new UpstreamStartError(why);
  }
  progress.intercept(transport);
  return {
    client,
    redactor,
    progress,
    fault: () =>
      violation !== undefined
        ? HTTP_FAULT_TEXT[violation]
        : gone
          ? "the connection to the upstream MCP server was closed"
          : undefined,
    kill: () => void transport.close().catch(() => {}),
    close: () => transport.close(),
  };
}

/** A fixed description of a failed start; the error's own message may quote the upstream. */
function startFailure(err: unknown): string {
  const msg = (err as Error)?.message ?? "";
  if (msg.startsWith("could not start the upstream MCP server")) return msg;
  if (/timed out|timeout/i.test(msg)) return "the upstream MCP server did not answer initialize in time";
  if (/closed/i.test(msg)) return "the upstream MCP server exited during startup";
  return "the upstream MCP server failed to initialize";
}
