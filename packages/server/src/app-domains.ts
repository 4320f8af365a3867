import type { AdminModule } from "./admin/admin-module.js";
import { createAgentsModule } from "./agents/agents-module.js";
import { createAnomalyModule } from "./anomaly/anomaly-module.js";
import { withOutcomes } from "./anomaly/outcome-auth.js";
import { createOutcomeTap, type OutcomeTap } from "./anomaly/outcomes.js";
import type { AuditModule } from "./audit/audit-module.js";
import type { AuditSink } from "./audit/audit-sink.js";
import type { Clock } from "./clock.js";
import type { ChangeFeed } from "./cluster/change-feed.js";
import type { Config } from "./config.js";
import { configDir } from "./config.js";
import { createConsumersModule } from "./consumers/consumers-module.js";
import { type CredentialsModuleOptions, createCredentialsModule } from "./credentials/credentials-module.js";
import { createCredentialsStore } from "./credentials/credentials-store.js";
import type { IntegrityKeys } from "./crypto/integrity-keys.js";
import type { Keyring } from "./crypto/keyring.js";
import type { SigningKeys } from "./crypto/signing-keys.js";
import { createEgressModule } from "./egress/egress-module.js";
import { createGatewayModule } from "./gateway/gateway-module.js";
import { parseCidrList } from "./http/client-ip.js";
import { createKeyExpiryScan } from "./keys/key-expiry-scan.js";
import { createKeysModule } from "./keys/keys-module.js";
import { createLeaksModule } from "./leaks/leaks-module.js";
import { createLimits, keyRateLimit } from "./limits/limits.js";
import type { RateLimiter } from "./limits/rate-limiter.js";
import { createMcpModule } from "./mcp/mcp-module.js";
import { createOAuthClientsPart, createOAuthModule } from "./oauth/oauth-module.js";
import type { Logger } from "./ops/logger.js";
import type { Metrics } from "./ops/metrics.js";
import type { Db } from "./store/db.js";
import { createTokensModule } from "./tokens/tokens-module.js";
import { createUsageModule } from "./usage/usage-module.js";
import { createUsersModule } from "./users/users-module.js";
import type { DeliverySettings } from "./webhooks/delivery-worker.js";
import { webhookEndpoints } from "./webhooks/webhooks-config.js";
import { createWebhooksModule } from "./webhooks/webhooks-module.js";
import type { WorkerHooks } from "./workers/worker-hooks.js";

// The domain modules, built in dependency order on what app.ts opened first (the store, the
// keyring, the audit log, the change feed, signing keys and admin auth), and wired together.

export interface StartOptions {
  logger?: Logger;
  clock?: Clock;
  rateLimiter?: RateLimiter;
  /** Namespace of Keyward's Redis keys (default `kw:`); tests sharing one Redis use one each. */
  redisKeyPrefix?: string;
  /** Called with the master-key warning (first start on SQLite without KEYWARD_MASTER_KEY). */
  warn?: (msg: string) => void;
  /** SSE heartbeat, token-provider fetch (tests). */
  credentials?: CredentialsModuleOptions;
  /** Webhook delivery: poll interval, timeout, backoff (tests shorten them). */
  webhooks?: Partial<DeliverySettings>;
  /** Set in a worker of `keyward serve --workers N` (workers/worker-hooks.ts). */
  worker?: WorkerHooks;
}

/** What every module is built from, and where it hands its shutdown step. */
export interface Base {
  config: Config;
  opts: StartOptions;
  db: Db;
  keyring: Keyring;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Until listening, `config.issuer` or ""; then the URL when `issuer` is not configured. */
  issuer: { value: string };
  /** Shutdown runs these first to last: the part built last stops first. */
  onClose(step: () => Promise<void> | void): void;
}

/** What app.ts opens before any domain: integrity keys, the audit log, the change feed, signing keys, admins. */
export interface Core extends Base {
  integrity: IntegrityKeys;
  auditModule: AuditModule;
  audit: AuditSink;
  changes: ChangeFeed;
  signingKeys: SigningKeys;
  admin: AdminModule;
}

/** Owners and their keys, limits, tokens, the gateway, users and the MCP gateway. */
export async function buildDomains(core: Core) {
  const { config, opts, db, clock, logger, metrics, audit, changes, integrity } = core;
  const streams = config.streams;
  // Signed webhooks (SPEC §10): built first, so every domain can announce into the outbox.
  const webhooks = createWebhooksModule({
    ...{ db, clock, logger, metrics, audit },
    endpoints: webhookEndpoints(config),
    ...(opts.webhooks ? { delivery: opts.webhooks } : {}),
  });
  core.onClose(() => webhooks.close());
  await webhooks.start();
  const credentials = createCredentialsModule(core, {
    streams: { perKey: streams.max_per_key, perAddress: streams.max_per_address, total: streams.max_total },
    events: webhooks.emitter,
    ...opts.credentials,
  });
  core.onClose(() => credentials.close());
  // Called only once everything is built (a key's owner is checked when the key is created).
  const owners = {
    agentExists: (n: string) => agents.exists(n),
    consumerExists: (n: string) => consumers.consumers.exists(n),
  };
  const keys = createKeysModule({ db, clock, audit, changes, metrics, integrity, owners, events: webhooks.emitter });
  // key.expiring, 7 days and 1 day ahead: scanned only when some endpoint wants it.
  const expiry = createKeyExpiryScan({ db, clock, logger, events: webhooks.webhooks });
  if (webhooks.webhooks.subscribed("key.expiring")) expiry.start();
  core.onClose(() => expiry.close());
  const { ownedKeys } = keys;
  const removeGrantsIn = (tx: Db, agent: string) => credentials.removeAgentIn(tx, agent);
  const agents = createAgentsModule({ db, clock, audit, changes, metrics, ownedKeys, removeGrantsIn });
  const consumers = createConsumersModule({ db, clock, audit, changes, ownedKeys });
  const { rateLimiter, usage, ...limits } = await createLimits({
    ...{ db, clock, logger, metrics },
    redisUrl: config.redis_url,
    fallback: config.rate_limit_fallback,
    ...(opts.redisKeyPrefix !== undefined ? { keyPrefix: opts.redisKeyPrefix } : {}),
    ...(opts.rateLimiter ? { rateLimiter: opts.rateLimiter } : {}),
    // Every process sharing a bank counts: the replicas, times the workers of each.
    leases: {
      replicas: config.rate_limit_replicas * (opts.worker?.processes ?? 1),
      overshoot: config.rate_limit_overshoot,
    },
    // A worker without Redis takes permits from its primary's bank.
    ...(opts.worker ? { bank: opts.worker.permitBank } : {}),
  });
  core.onClose(() => limits.close());
  const issuer = () => core.issuer.value;
  // Every deciding module records here; usage counting and the anomaly detectors subscribe.
  const outcomes = createOutcomeTap(logger);
  // Per-key usage analytics (SPEC §10); `usage` above is the quota tracker.
  const analytics = createUsageModule({
    ...{ db, clock, logger, outcomes, settings: config.usage, getKey: keys.keys.get },
    // quota.threshold at 80 % and 100 %, only when some endpoint wants it.
    ...(webhooks.webhooks.subscribed("quota.threshold")
      ? { quotaEvents: { quotas: usage, emitter: webhooks.emitter } }
      : {}),
  });
  core.onClose(() => analytics.close());
  // Registered MCP clients first: a refresh of their tokens is judged by them (SPEC §12).
  const oauthClients = createOAuthClientsPart({
    ...{ db, clock, audit, integrity, issuer },
    config: config.mcp_authorization,
    trustedIssuers: config.trusted_issuers,
    serverExists: (name) => Object.hasOwn(config.mcp.servers, name),
  });
  const tokens = await createTokensModule({
    ...{ db, clock, logger, metrics, audit, changes, integrity, issuer, keys: keys.keys },
    signingKeys: core.signingKeys,
    agentExists: agents.exists,
    mayCall: (from, to) => credentials.grants.mayCall(from, to),
    trustedProxies: config.trusted_proxies.length > 0 ? parseCidrList(config.trusted_proxies) : null,
    trustedIssuers: config.trusted_issuers,
    trustedWorkloads: config.trusted_workloads,
    rateLimit: keyRateLimit({ rateLimiter, shared: limits.shared }),
    outcomes,
    registeredClients: oauthClients.refresh,
    settings: {
      maxLifetimeS: config.token_max_lifetime_s,
      refreshLifetimeS: config.refresh_token_lifetime_s,
      maxActDepth: config.max_delegation_depth,
      longestTokenS: Math.max(config.token_max_lifetime_s, config.upstream_token_ttl_s),
    },
  });
  core.onClose(() => tokens.close());
  // The browser flow and the code grant of the authorization server for MCP clients.
  const oauth = createOAuthModule(oauthClients, {
    logger,
    tokens: tokens.service,
    verifyIdToken: (token, expect) => tokens.trustedIssuers.verify(token, expect),
  });
  core.onClose(() => oauth.close());
  const gateway = createGatewayModule({
    ...{ clock, metrics, audit, rateLimiter, usage, issuer, outcomes },
    auth: tokens.callerAuth,
    agents: agents.agents,
    sharedLimits: limits.shared,
    signer: core.signingKeys,
    settings: {
      upstreamTimeoutMs: config.upstream_timeout_ms,
      upstreamTokenTtlS: config.upstream_token_ttl_s,
      denials: config.audit,
    },
  });
  core.onClose(() => gateway.close());
  // Detectors read the outcome tap; an auto-freeze is the keys service's own freeze (audit, change
  // feed to every replica, key.frozen), so it is the admin API's path, with the rule as actor.
  const anomaly = createAnomalyModule({
    ...{ db, clock, logger, metrics, audit, outcomes },
    config: config.anomalies,
    keys: keys.keys,
    webhooks: webhooks.emitter,
  });
  core.onClose(() => anomaly.close());
  tokens.onRefreshReuse((reuse) => anomaly.refreshReused(reuse));
  // `POST /v1/leaks`: a reported live key is revoked (or frozen) through the keys service and alerted.
  const leaks = createLeaksModule({
    ...{ db, clock, logger, audit, keys: keys.keys, alerts: anomaly.alerts },
    config: config.leaks,
  });
  keys.keys.onChange((id) => gateway.tokens.forgetKey(id));
  // A revoked access token ends the event streams it opened (a key's changes end theirs), and
  // an upstream JWT revoked by its jti leaves the gateway's cache.
  tokens.onTokenRevoked((jti) => credentials.events.dropToken(jti));
  tokens.onTokenRevoked((jti) => gateway.tokens.forgetJti(jti));
  changes.on("signing_key", tokens.reloadSigningKeys);
  // This replica may have missed changes (the change log was unreadable too long, or pruned
  // past it): drop everything cached; what is still valid is read again on next use.
  changes.onReset(() => {
    keys.keys.invalidateAll();
    gateway.tokens.clear();
    agents.agents.invalidate();
    tokens.reloadSigningKeys();
  });
  return {
    ...core,
    webhooks,
    outcomes,
    analytics,
    anomaly,
    leaks,
    credentials,
    keys,
    agents,
    consumers,
    tokens,
    oauth,
    gateway,
    ...buildTools(core, credentials, tokens, outcomes),
  };
}

export type Domains = Awaited<ReturnType<typeof buildDomains>>;

/** Per-user tool credentials (`users.source` is what the MCP gateway resolves from), and `/mcp/{server}`. */
function buildTools(
  core: Core,
  credentials: ReturnType<typeof createCredentialsModule>,
  tokens: Awaited<ReturnType<typeof createTokensModule>>,
  outcomes: OutcomeTap,
) {
  const users = createUsersModule({
    ...core,
    grantedUserCredentials: (agent) => credentials.grants.userCredentials(agent),
  });
  core.onClose(() => users.close());
  // `/mcp/{server}` (SPEC §8): one upstream per (server, user), stopped at shutdown.
  const mcp = createMcpModule({
    config: core.config.mcp,
    configDir: configDir(core.config),
    credentials: users.source,
    ...{ audit: core.audit, metrics: core.metrics, logger: core.logger },
    auth: withOutcomes(tokens.callerAuth, outcomes, core.clock, "mcp"),
    issuer: () => core.issuer.value,
  });
  core.onClose(() => mcp.close());
  return { users, mcp };
}

/** `ANY /egress/{credential}/…`, built once the token providers have started. */
export function buildEgress(d: Domains) {
  const { credentials } = d;
  const egress = createEgressModule({
    store: createCredentialsStore(d.db),
    credentialMode: (agent, name) => credentials.grants.credentialMode(agent, name),
    open: (v) => credentials.credentials.openVersion(v),
    pointerIntact: (row) => credentials.credentials.pointerIntact(row),
    auth: withOutcomes(d.tokens.callerAuth, d.outcomes, d.clock, "egress"),
    ...{ audit: d.audit, changes: d.changes, metrics: d.metrics, logger: d.logger, clock: d.clock },
    timeoutMs: d.config.upstream_timeout_ms,
  });
  d.onClose(() => egress.close());
  return egress;
}
