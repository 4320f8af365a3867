import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/**
 * A labelled counter for the request hot path: increments are a Map lookup and an addition;
 * prom-client sees the totals only when /metrics is scraped (its own inc() hashes the labels on
 * every call, a measurable cost per request).
 */
export class HotCounter<L extends string> {
  private readonly totals = new Map<string, { labels: Record<L, string>; n: number }>();
  constructor(
    registry: Registry,
    name: string,
    help: string,
    private readonly labelNames: readonly L[],
  ) {
    const totals = this.totals;
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const t of totals.values()) this.inc(t.labels, t.n);
      },
    });
  }

  inc(...values: string[]): void {
    const key = values.length === 1 ? (values[0] as string) : values.join("\u0000");
    const t = this.totals.get(key);
    if (t) {
      t.n++;
      return;
    }
    const labels = {} as Record<L, string>;
    this.labelNames.forEach((l, i) => {
      labels[l] = values[i] ?? "";
    });
    this.totals.set(key, { labels, n: 1 });
  }
}

/** What the audit log has not written yet: how many events, and how long the oldest has waited. */
export interface AuditBacklog {
  events: number;
  oldestMs: number;
}

/**
 * Prometheus metrics. Labels are closed sets (codes, routes, outcomes): never a key, token,
 * credential value or anything a caller controls, so no secret can reach a label.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "keyward_process_" });
  let mcpUpstreamCounts = () => ({ stdio: 0, http: 0 });
  let auditBacklog: () => AuditBacklog = () => ({ events: 0, oldestMs: 0 });
  const m = {
    registry,
    requests: new HotCounter(registry, "keyward_http_requests_total", "HTTP requests by route group and status", [
      "route",
      "status",
    ]),
    decisions: new HotCounter(
      registry,
      "keyward_gateway_decisions_total",
      "Gateway and forward-auth decisions by code (allowed or the denial code)",
      ["code"],
    ),
    checkLatency: new Histogram({
      name: "keyward_gateway_check_seconds",
      help: "Time spent authenticating and authorizing a gateway request",
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers: [registry],
    }),
    upstreamLatency: new Histogram({
      name: "keyward_gateway_upstream_seconds",
      help: "Time to the upstream's response headers",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    rateLimitHits: new Counter({
      name: "keyward_rate_limit_hits_total",
      help: "Requests refused by a rate limit",
      registers: [registry],
    }),
    quotaHits: new Counter({
      name: "keyward_quota_hits_total",
      help: "Requests refused by a quota",
      registers: [registry],
    }),
    limitsUnavailable: new Counter({
      name: "keyward_limits_unavailable_total",
      help: "Rate-limit and quota checks Redis could not answer, by fallback (closed: refused, local: counted in this process)",
      labelNames: ["fallback"] as const,
      registers: [registry],
    }),
    limitsRedisUp: new Gauge({
      name: "keyward_limits_redis_up",
      help: "1 while the Redis connection for rate limits and quotas is ready, 0 while it is not (stays 0 without Redis)",
      registers: [registry],
    }),
    cacheLookups: new HotCounter(
      registry,
      "keyward_key_cache_lookups_total",
      "Key verification cache lookups by result (hit, miss)",
      ["result"],
    ),
    tokensIssued: new Counter({
      name: "keyward_tokens_issued_total",
      help: "Tokens signed by Keyward by kind (upstream, access)",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    credentialReads: new Counter({
      name: "keyward_credential_reads_total",
      help: "Outbound credential reads and injections",
      labelNames: ["mode"] as const,
      registers: [registry],
    }),
    rotations: new Counter({
      name: "keyward_rotations_total",
      help: "Key and credential rotations",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    /** `rule` is a configured rule's name or a built-in one (`canary`, `leak_report`): a closed set. */
    alerts: new Counter({
      name: "keyward_alerts_total",
      help: "Anomaly alerts raised (after deduplication) by rule and severity",
      labelNames: ["rule", "severity"] as const,
      registers: [registry],
    }),
    autoFreezes: new Counter({
      name: "keyward_auto_freezes_total",
      help: "Keys frozen by an anomaly rule, by rule",
      labelNames: ["rule"] as const,
      registers: [registry],
    }),
    adminChanges: new Counter({
      name: "keyward_admin_changes_total",
      help: "Admin API changes by action",
      labelNames: ["action"] as const,
      registers: [registry],
    }),
    auditFailures: new Counter({
      name: "keyward_audit_failures_total",
      help: "Audit events that could not be written",
      registers: [registry],
    }),
    /** Events that had been counted as failed (their write passed its deadline) and committed afterwards. */
    auditLate: new Counter({
      name: "keyward_audit_late_total",
      help: "Audit events counted as failed when their write passed its deadline, whose write committed afterwards",
      registers: [registry],
    }),
    /** Read at scrape time from the audit log (`observeAuditBacklog`): a stalled write shows at once. */
    auditQueue: new Gauge({
      name: "keyward_audit_queue_length",
      help: "Audit events waiting to be written, including the batch being written",
      registers: [registry],
      collect() {
        this.set(auditBacklog().events);
      },
    }),
    auditOldestPending: new Gauge({
      name: "keyward_audit_oldest_pending_seconds",
      help: "Age of the oldest audit event waiting to be written (0 when none waits)",
      registers: [registry],
      collect() {
        this.set(auditBacklog().oldestMs / 1000);
      },
    }),
    observeAuditBacklog(backlog: () => AuditBacklog): void {
      auditBacklog = backlog;
    },
    /** Read at scrape time from the MCP gateway (`observeMcpUpstreams`). */
    mcpUpstreams: new Gauge({
      name: "keyward_mcp_upstreams",
      help: "MCP upstreams alive on this replica: stdio processes (one per server and user) and HTTP clients",
      labelNames: ["kind"],
      registers: [registry],
      collect() {
        const n = mcpUpstreamCounts();
        this.set({ kind: "stdio" }, n.stdio);
        this.set({ kind: "http" }, n.http);
      },
    }),
    observeMcpUpstreams(counts: () => { stdio: number; http: number }): void {
      mcpUpstreamCounts = counts;
    },
    /** `server` is a configured MCP server name (a closed set), never a user or a tool argument. */
    mcpToolCalls: new HotCounter(
      registry,
      "keyward_mcp_tool_calls_total",
      "MCP gateway tools/call by server and outcome",
      ["server", "outcome"],
    ),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
