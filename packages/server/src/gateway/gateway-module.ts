import type { RoutableAgent } from "../agents/agents-service.js";
import type { OutcomeTap } from "../anomaly/outcomes.js";
import type { AuditSink } from "../audit/audit-sink.js";
import { createDenialSampler } from "../audit/denial-sampler.js";
import type { CallerAuth } from "../auth/caller-auth.js";
import type { Clock } from "../clock.js";
import type { AuditLimitsConfig } from "../config.js";
import { codeToStatus } from "../errors.js";
import { sendError } from "../http/respond.js";
import type { Router } from "../http/router.js";
import type { RateLimiter } from "../limits/rate-limiter.js";
import type { SharedLimits } from "../limits/shared-limits.js";
import type { UsageTracker } from "../limits/usage.js";
import type { Metrics } from "../ops/metrics.js";
import { createGatewayHandler, type GatewayDeps, registerForwardAuthRoute } from "./gateway-routes.js";
import { createProxy } from "./proxy.js";
import { createUpstreamTokens, type TokenSigner } from "./upstream-token.js";

export interface GatewayModuleDeps {
  clock: Clock;
  metrics: Metrics;
  audit: AuditSink;
  /** Who is calling (auth/caller-auth.ts): the gateway adds scope, agent, limits and quota. */
  auth: CallerAuth;
  agents: {
    cached: (name: string) => RoutableAgent | null | undefined;
    load: (name: string) => Promise<RoutableAgent | null>;
  };
  rateLimiter: RateLimiter;
  usage: UsageTracker;
  sharedLimits: SharedLimits | undefined;
  signer: TokenSigner;
  issuer: () => string;
  /** Where every decision is recorded (usage counting, anomaly detectors). */
  outcomes: OutcomeTap;
  settings: { upstreamTimeoutMs: number; upstreamTokenTtlS: number; denials: AuditLimitsConfig };
}

/**
 * The inbound gateway, wired (SPEC §4): the proxy to the agents, the upstream JWTs it mints, the
 * sampling of unauthenticated denials' audit records, `ANY /agents/{name}/…` and forward-auth.
 */
export function createGatewayModule(deps: GatewayModuleDeps) {
  const { metrics } = deps;
  const proxy = createProxy({
    timeoutMs: deps.settings.upstreamTimeoutMs,
    onResponse: (status, ms) => {
      metrics.upstreamLatency.observe(ms / 1000);
      metrics.requests.inc("gateway", String(status));
    },
    onFailure: (res, requestId, error) => {
      const message = error === "upstream_timeout" ? "the agent did not answer in time" : "the agent is unreachable";
      sendError(res, error, message, requestId);
      metrics.requests.inc("gateway", String(codeToStatus(error)));
    },
  });
  const tokens = createUpstreamTokens({
    signer: deps.signer,
    issuer: deps.issuer,
    ttlS: deps.settings.upstreamTokenTtlS,
    onMint: () => metrics.tokensIssued.inc({ kind: "upstream" }),
  });
  // Unauthenticated denials are sampled per address; the summaries of the last window go out at close.
  const { denials: limits } = deps.settings;
  const denials = createDenialSampler({
    audit: deps.audit,
    clock: deps.clock,
    registry: metrics.registry,
    limits: {
      perAddressPerMinute: limits.unauthenticated_denials_per_address_per_minute,
      perMinute: limits.unauthenticated_denials_per_minute,
      maxAddresses: limits.denial_addresses_tracked,
    },
  });
  const gatewayDeps: GatewayDeps = {
    authorize: {
      auth: deps.auth,
      cachedAgent: deps.agents.cached,
      loadAgent: deps.agents.load,
      rateLimiter: deps.rateLimiter,
      usage: deps.usage,
      ...(deps.sharedLimits ? { sharedLimits: deps.sharedLimits } : {}),
      now: () => deps.clock.now(),
    },
    tokens,
    proxy,
    audit: deps.audit,
    metrics,
    denials,
    outcomes: deps.outcomes,
  };

  return {
    /** The upstream JWTs: a key change, a revoked token or a change-feed reset drops them. */
    tokens,
    handler: createGatewayHandler(gatewayDeps),

    register(router: Router): void {
      registerForwardAuthRoute(router, gatewayDeps);
    },

    close(): void {
      denials.close();
      proxy.close();
    },
  };
}
