import type { AuditSink } from "../audit/audit-sink.js";
import type { CallerAuth } from "../auth/caller-auth.js";
import type { McpConfig } from "../config.js";
import type { Router } from "../http/router.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import type { UserCredentialSource } from "../users/user-credential-source.js";
import { createMcpGateway } from "./mcp-gateway.js";
import { registerMcpMetadataRoutes } from "./mcp-metadata-routes.js";
import { registerMcpRoutes } from "./mcp-routes.js";
import { resolveUpstream } from "./mcp-upstream-spec.js";

export interface McpModuleDeps {
  config: McpConfig;
  /** Folder relative `command`, `args` and `cwd` resolve against (the config file's). */
  configDir: string;
  credentials: UserCredentialSource;
  audit: AuditSink;
  metrics: Metrics;
  logger: Logger;
  auth: CallerAuth;
  /** Keyward's issuer: MCP servers' resource URLs and metadata live under it (auth/mcp-resource.ts). */
  issuer: () => string;
}

/** The MCP gateway `/mcp/{server}` (SPEC §8): wiring only; the rules live in mcp-gateway.ts. */
export function createMcpModule(deps: McpModuleDeps) {
  const { config } = deps;
  const log = deps.logger.child({ component: "mcp" });
  const servers = new Map(
    Object.entries(config.servers).map(([name, cfg]) => [name, resolveUpstream(name, cfg, deps.configDir)] as const),
  );
  const gateway = createMcpGateway({
    servers,
    credentials: deps.credentials,
    audit: deps.audit,
    onToolCall: (server, outcome) => deps.metrics.mcpToolCalls.inc(server, outcome),
    toolTimeoutMs: config.tool_timeout_ms,
    startTimeoutMs: config.start_timeout_ms,
    maxCallsPerUser: config.max_calls_per_user,
    // Which server and what went wrong; never the user's output, values or the user (that is audit's).
    onUpstreamTrouble: (server, reason) => log.warn({ server, reason }, "MCP upstream trouble"),
    maxProcesses: config.max_processes,
    idleTimeoutMs: config.idle_timeout_s * 1000,
  });
  deps.metrics.observeMcpUpstreams(gateway.upstreamCounts);
  return {
    gateway,
    register(router: Router): void {
      registerMcpRoutes(router, {
        gateway,
        auth: deps.auth,
        audit: deps.audit,
        issuer: deps.issuer,
      });
      registerMcpMetadataRoutes(router, { issuer: deps.issuer, has: gateway.has });
    },
    /** Stops every upstream process and client (app shutdown). */
    close: () => gateway.close(),
  };
}
