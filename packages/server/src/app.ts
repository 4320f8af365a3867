import type { AddressInfo } from "node:net";
import { createAdminModule } from "./admin/admin-module.js";
import { createAgentsModule } from "./agents/agents-module.js";
import { createAuditModule } from "./audit/audit-module.js";
import { loadKeyring, openLockedStore } from "./boot.js";
import { type Clock, systemClock } from "./clock.js";
import { openChangeFeed } from "./cluster/open-change-feed.js";
import type { Config } from "./config.js";
import { configDir } from "./config.js";
import { createConsumersModule } from "./consumers/consumers-module.js";
import { type CredentialsModuleOptions, createCredentialsModule } from "./credentials/credentials-module.js";
import { createCredentialsStore } from "./credentials/credentials-store.js";
import { macExistingCredentialRows } from "./credentials/integrity-upgrade.js";
import { openIntegrity } from "./crypto/integrity-root.js";
import type { Keyring } from "./crypto/keyring.js";
import { createSigningKeys } from "./crypto/signing-keys.js";
import { createEgressModule } from "./egress/egress-module.js";
import { createGatewayModule } from "./gateway/gateway-module.js";
import { parseCidrList } from "./http/client-ip.js";
import { Router } from "./http/router.js";
import { createHttpServer } from "./http/server.js";
import { createKeysModule } from "./keys/keys-module.js";
import { markLegacyHashes } from "./keys/legacy-hashes.js";
import { createLimits, keyRateLimit } from "./limits/limits.js";
import type { RateLimiter } from "./limits/rate-limiter.js";
import { createMcpModule } from "./mcp/mcp-module.js";
import { createLogger, type Logger } from "./ops/logger.js";
import { createMetrics, type Metrics } from "./ops/metrics.js";
import { registerOpsRoutes } from "./ops/ops-routes.js";
import type { Db } from "./store/db.js";
import { createTokensModule } from "./tokens/tokens-module.js";
import { createUsersModule } from "./users/users-module.js";

// app.ts only composes: each domain's *-module.ts builds its parts from what it is handed, and
// this file builds the modules in dependency order, mounts their routes and starts and stops them.

export interface RunningKeyward {
  /** `http://host:port` the server listens on. */
  url: string;
  address: AddressInfo;
  /** The generated first admin token, when this start created one (print once, never again). */
  generatedAdminToken: string | undefined;
  close(): Promise<void>;
}

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
}

/** What every module is built from, and where it hands its shutdown step. */
interface Base {
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

/** Builds every part from the configuration, wires them, and starts listening. */
export async function startKeyward(config: Config, opts: StartOptions = {}): Promise<RunningKeyward> {
  const logger = opts.logger ?? createLogger({ level: config.log_level });
  const keyring = loadKeyring(config, opts.warn ?? ((msg) => logger.warn(msg)));
  const store = await openLockedStore(config);
  const { db } = store;
  const cleanups: Array<() => Promise<void> | void> = [() => db.close(), () => store.release()];
  try {
    const base: Base = {
      ...{ config, opts, db, keyring, logger },
      clock: opts.clock ?? systemClock,
      metrics: createMetrics(),
      issuer: { value: config.issuer ?? "" },
      onClose: (step) => cleanups.unshift(step),
    };
    const core = await buildCore(base);
    const domains = await buildDomains(core);
    const router = mountRoutes(domains);
    await domains.credentials.start();
    return await listen(domains, router, buildEgress(domains), cleanups);
  } catch (err) {
    for (const c of cleanups) await Promise.resolve(c()).catch(() => {});
    throw err;
  }
}

/** What every domain rests on: integrity keys, the audit log, the change feed, signing keys, admins. */
async function buildCore(base: Base) {
  const { config, db, keyring, clock, logger, metrics } = base;
  // Keys that tell Keyward's own rows from rows written with database access alone (crypto/README.md).
  const integrity = await openIntegrity({ db, keyring, clock, logger });
  await markLegacyHashes({ db, keys: integrity.keys, logger });
  await macExistingCredentialRows({ db, keys: integrity.keys, logger });
  const auditModule = createAuditModule({
    ...{ db, clock, logger, metrics, integrity },
    settings: { failClosed: config.audit_fail_closed, writeTimeoutMs: config.database.audit_write_timeout_ms },
  });
  base.onClose(() => auditModule.close());
  // Every cache below is invalidated through this feed, on every replica (see cluster/).
  const changes = await openChangeFeed({
    ...{ db, clock, logger },
    databaseUrl: config.database_url,
    redisUrl: config.redis_url,
    reconcileIntervalMs: config.reconcile_interval_ms,
    maxStalenessMs: config.max_staleness_ms,
  });
  base.onClose(() => changes.close());
  const { audit } = auditModule;
  const signingKeys = createSigningKeys({ db, keyring, clock });
  await signingKeys.init();
  const admin = await createAdminModule({ db, clock, integrity: integrity.keys, keyring, audit }, config.admin_token);
  return { ...base, integrity: integrity.keys, auditModule, audit, changes, signingKeys, admin };
}

/** Owners and their keys, limits, tokens, the gateway, users and the MCP gateway. */
async function buildDomains(core: Awaited<ReturnType<typeof buildCore>>) {
  const { config, opts, db, clock, logger, metrics, audit, changes, integrity } = core;
  const streams = config.streams;
  const credentials = createCredentialsModule(core, {
    streams: { perKey: streams.max_per_key, perAddress: streams.max_per_address, total: streams.max_total },
    ...opts.credentials,
  });
  core.onClose(() => credentials.close());
  // Called only once everything is built (a key's owner is checked when the key is created).
  const owners = {
    agentExists: (n: string) => agents.exists(n),
    consumerExists: (n: string) => consumers.consumers.exists(n),
  };
  const keys = createKeysModule({ db, clock, audit, changes, metrics, integrity, owners });
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
  });
  core.onClose(() => limits.close());
  const issuer = () => core.issuer.value;
  const tokens = await createTokensModule({
    ...{ db, clock, logger, metrics, audit, changes, integrity, issuer, keys: keys.keys },
    signingKeys: core.signingKeys,
    agentExists: agents.exists,
    mayCall: (from, to) => credentials.grants.mayCall(from, to),
    trustedProxies: config.trusted_proxies.length > 0 ? parseCidrList(config.trusted_proxies) : null,
    trustedIssuers: config.trusted_issuers,
    rateLimit: keyRateLimit({ rateLimiter, shared: limits.shared }),
    settings: {
      maxLifetimeS: config.token_max_lifetime_s,
      refreshLifetimeS: config.refresh_token_lifetime_s,
      maxActDepth: config.max_delegation_depth,
      longestTokenS: Math.max(config.token_max_lifetime_s, config.upstream_token_ttl_s),
    },
  });
  core.onClose(() => tokens.close());
  const gateway = createGatewayModule({
    ...{ clock, metrics, audit, rateLimiter, usage, issuer },
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
  return { ...core, credentials, keys, agents, consumers, tokens, gateway, ...buildTools(core, credentials, tokens) };
}

type Domains = Awaited<ReturnType<typeof buildDomains>>;

/** Per-user tool credentials (`users.source` is what the MCP gateway resolves from), and `/mcp/{server}`. */
function buildTools(
  core: Base & Awaited<ReturnType<typeof buildCore>>,
  credentials: ReturnType<typeof createCredentialsModule>,
  tokens: Awaited<ReturnType<typeof createTokensModule>>,
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
    auth: tokens.callerAuth,
  });
  core.onClose(() => mcp.close());
  return { users, mcp };
}

/** Every route, in the order they were always mounted. */
function mountRoutes(d: Domains): Router {
  const router = new Router();
  const { requireAdmin } = d.admin;
  const auth = { requireAdmin, auth: d.tokens.callerAuth };
  const jwks = () => d.signingKeys.jwks();
  registerOpsRoutes(router, { db: d.db, metrics: d.metrics, metricsToken: d.config.metrics_token, jwks });
  d.agents.register(router, requireAdmin);
  d.consumers.register(router, requireAdmin);
  d.keys.register(router, requireAdmin);
  d.auditModule.register(router, requireAdmin);
  d.gateway.register(router);
  d.tokens.register(router, requireAdmin);
  d.credentials.register(router, auth);
  d.users.register(router, auth);
  d.mcp.register(router);
  d.admin.register(router, () => [...d.credentials.sealedColumns, ...d.users.sealedColumns]);
  return router;
}

/** `ANY /egress/{credential}/…`, built once the token providers have started. */
function buildEgress(d: Domains) {
  const { credentials } = d;
  const egress = createEgressModule({
    store: createCredentialsStore(d.db),
    credentialMode: (agent, name) => credentials.grants.credentialMode(agent, name),
    open: (v) => credentials.credentials.openVersion(v),
    pointerIntact: (row) => credentials.credentials.pointerIntact(row),
    auth: d.tokens.callerAuth,
    ...{ audit: d.audit, changes: d.changes, metrics: d.metrics, logger: d.logger, clock: d.clock },
    timeoutMs: d.config.upstream_timeout_ms,
  });
  d.onClose(() => egress.close());
  return egress;
}

/** Listens; `close()` stops accepting, ends event streams, drains in-flight requests, then runs `cleanups`. */
async function listen(
  d: Domains,
  router: Router,
  egress: ReturnType<typeof buildEgress>,
  cleanups: ReadonlyArray<() => Promise<void> | void>,
): Promise<RunningKeyward> {
  const { config, logger } = d;
  const http = createHttpServer({
    router,
    gateway: d.gateway.handler,
    egress: egress.handler,
    ...{ logger, metrics: d.metrics },
    timeouts: config.http,
  });
  const address = await http.listen(config.port, config.host);
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  if (!config.issuer) d.issuer.value = url;
  const issuer = d.issuer.value;
  logger.info({ url, store: d.db.engine, issuer, audit_fail_closed: config.audit_fail_closed }, "keyward started");

  let closing: Promise<void> | undefined;
  return {
    url,
    address,
    generatedAdminToken: d.admin.generatedToken,
    close() {
      closing ??= (async () => {
        logger.info("keyward stopping: draining in-flight requests");
        // Event streams never finish on their own: end them first, or they hold the drain open.
        d.credentials.close();
        await http.close(config.shutdown_timeout_ms);
        for (const c of cleanups) await c();
      })();
      return closing;
    },
  };
}
