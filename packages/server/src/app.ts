import { mkdirSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { dirname } from "node:path";
import { createAdminAuth } from "./admin/admin-auth.js";
import { registerAgentRoutes } from "./agents/agents-routes.js";
import { createAgentsService } from "./agents/agents-service.js";
import { createAgentsStore } from "./agents/agents-store.js";
import {
  AUDIT_CHECKPOINT_INTERVAL_MS,
  createAuditChainState,
  startAuditCheckpoints,
} from "./audit/audit-checkpoints.js";
import { createAuditLog } from "./audit/audit-log.js";
import { registerAuditRoutes } from "./audit/audit-routes.js";
import { type Clock, systemClock } from "./clock.js";
import { openChangeFeed } from "./cluster/open-change-feed.js";
import type { Config } from "./config.js";
import { ConfigError, configDir } from "./config.js";
import { registerConsumerRoutes } from "./consumers/consumers-routes.js";
import { createConsumersService } from "./consumers/consumers-service.js";
import { createConsumersStore } from "./consumers/consumers-store.js";
import { type CredentialsModuleOptions, createCredentialsModule } from "./credentials/credentials-module.js";
import { createCredentialsStore } from "./credentials/credentials-store.js";
import { macExistingCredentialRows } from "./credentials/integrity-upgrade.js";
import { INTEGRITY_ROOT_SEALED, openIntegrity } from "./crypto/integrity-root.js";
import { createKeyring } from "./crypto/keyring.js";
import { loadMasterKey } from "./crypto/master-key.js";
import { SIGNING_KEYS_SEALED } from "./crypto/master-key-rotation.js";
import { registerMasterKeyRoutes } from "./crypto/master-key-routes.js";
import { parsePreviousMasterKeys } from "./crypto/previous-master-keys.js";
import { createSigningKeys } from "./crypto/signing-keys.js";
import { createEgressModule } from "./egress/egress-module.js";
import { createGatewayModule } from "./gateway/gateway-module.js";
import { parseCidrList } from "./http/client-ip.js";
import { Router } from "./http/router.js";
import { createHttpServer } from "./http/server.js";
import { registerKeyRoutes } from "./keys/keys-routes.js";
import { createKeysService } from "./keys/keys-service.js";
import { createKeysStore } from "./keys/keys-store.js";
import { markLegacyHashes } from "./keys/legacy-hashes.js";
import { createLimits, keyRateLimit } from "./limits/limits.js";
import type { RateLimiter } from "./limits/rate-limiter.js";
import { createMcpModule } from "./mcp/mcp-module.js";
import { createLogger, type Logger } from "./ops/logger.js";
import { createMetrics } from "./ops/metrics.js";
import { registerOpsRoutes } from "./ops/ops-routes.js";
import type { Db } from "./store/db.js";
import { isPostgresUrl, openStore, sqlitePath, storeOptions } from "./store/open-store.js";
import { lockSqlite } from "./store/sqlite-lock.js";
import { createTokensModule } from "./tokens/tokens-module.js";
import { createUsersModule } from "./users/users-module.js";

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

/** Builds every part from the configuration, wires them, and starts listening. */
export async function startKeyward(config: Config, opts: StartOptions = {}): Promise<RunningKeyward> {
  const logger = opts.logger ?? createLogger({ level: config.log_level });
  const clock = opts.clock ?? systemClock;
  const metrics = createMetrics();

  let masterKey: Buffer;
  try {
    masterKey = loadMasterKey({
      fromEnv: config.master_key,
      dataDir: config.data_dir,
      requireExplicit: isPostgresUrl(config.database_url),
      warn: opts.warn ?? ((msg) => logger.warn(msg)),
    });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const retired = parsePreviousMasterKeys(config.master_key_previous, "KEYWARD_MASTER_KEY_PREVIOUS");
  const keyring = createKeyring({ active: masterKey, retired });
  masterKey.fill(0);
  for (const k of retired) k.fill(0);

  const sqliteFile = sqlitePath(config.database_url, config.data_dir);
  let lock: { release(): void } | undefined;
  if (sqliteFile !== undefined && sqliteFile !== ":memory:") {
    mkdirSync(dirname(sqliteFile), { recursive: true, mode: 0o700 });
    try {
      lock = lockSqlite(sqliteFile);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  }
  let db: Db;
  try {
    db = await openStore(config.database_url, config.data_dir, storeOptions(config.database));
  } catch (err) {
    lock?.release();
    throw err;
  }
  const cleanups: Array<() => Promise<void> | void> = [() => db.close(), () => lock?.release()];
  try {
    // Keys that tell Keyward's own rows from rows written with database access alone (crypto/README.md).
    const integrity = await openIntegrity({ db, keyring, clock, logger });
    await markLegacyHashes({ db, keys: integrity.keys, logger });
    await macExistingCredentialRows({ db, keys: integrity.keys, logger });
    const auditChain = createAuditChainState({ keyedFrom: integrity.auditKeyedFrom, keys: integrity.keys });
    const checkpoints = startAuditCheckpoints({ chain: auditChain, logger, intervalMs: AUDIT_CHECKPOINT_INTERVAL_MS });
    cleanups.unshift(() => checkpoints.stop()); // runs after audit.close(): the last checkpoint covers everything
    const audit = createAuditLog({
      db,
      clock,
      logger,
      metrics,
      failClosed: config.audit_fail_closed,
      writeTimeoutMs: config.database.audit_write_timeout_ms,
      chain: auditChain,
    });
    cleanups.unshift(() => audit.close());
    // Every cache below is invalidated through this feed, on every replica (see cluster/).
    const changes = await openChangeFeed({
      db,
      databaseUrl: config.database_url,
      redisUrl: config.redis_url,
      clock,
      logger,
      reconcileIntervalMs: config.reconcile_interval_ms,
      maxStalenessMs: config.max_staleness_ms,
    });
    cleanups.unshift(() => changes.close());
    const signingKeys = createSigningKeys({ db, keyring, clock });
    await signingKeys.init();

    const adminAuth = createAdminAuth({ db, clock, integrity: integrity.keys });
    const { generated } = await adminAuth.bootstrap(config.admin_token);
    const requireAdmin = adminAuth.requireAdmin;

    const keysStore = createKeysStore(db);
    // Deleting an owner revokes its keys; the key service (built below) drops them from its cache.
    const ownedKeys = {
      revokeIn: (tx: Db, owner: string) => keysStore.revokeOwnedBy(tx, owner, clock.now()),
      revoked: (ids: readonly string[]) => {
        for (const id of ids) keys.invalidate(id);
      },
    };
    const credentials = createCredentialsModule(
      { db, keyring, clock, audit, changes, logger, metrics, integrity: integrity.keys },
      {
        streams: {
          perKey: config.streams.max_per_key,
          perAddress: config.streams.max_per_address,
          total: config.streams.max_total,
        },
        ...opts.credentials,
      },
    );
    cleanups.unshift(() => credentials.close());
    // An agent's delete also removes its grants, in the same transaction.
    const agentOwned = {
      ...ownedKeys,
      revokeIn: async (tx: Db, owner: string) => {
        await credentials.removeAgentIn(tx, owner.slice("agent:".length));
        return ownedKeys.revokeIn(tx, owner);
      },
    };
    const agents = createAgentsService({
      db,
      store: createAgentsStore(db),
      clock,
      audit,
      ownedKeys: agentOwned,
      feed: changes,
    });
    const consumers = createConsumersService({
      db,
      store: createConsumersStore(db),
      clock,
      audit,
      ownedKeys,
      feed: changes,
    });
    const keys = createKeysService({
      db,
      store: keysStore,
      clock,
      audit,
      integrity: integrity.keys,
      feed: changes,
      ownerExists: async (owner) => {
        const [kind, name] = owner.split(/:(.*)/s) as [string, string];
        if (kind === "consumer") return consumers.exists(name);
        if (kind === "agent") return (await agents.load(name)) !== null;
        return kind === "user";
      },
      onLookup: (hit) => metrics.cacheLookups.inc(hit ? "hit" : "miss"),
    });

    const { rateLimiter, usage, ...limits } = await createLimits({
      db,
      clock,
      logger,
      metrics,
      redisUrl: config.redis_url,
      fallback: config.rate_limit_fallback,
      ...(opts.redisKeyPrefix !== undefined ? { keyPrefix: opts.redisKeyPrefix } : {}),
      ...(opts.rateLimiter ? { rateLimiter: opts.rateLimiter } : {}),
    });
    cleanups.unshift(() => limits.close());

    let issuer = config.issuer ?? "";
    agents.onChange((_name, action) => metrics.adminChanges.inc({ action }));
    changes.on("key", (id) => keys.invalidate(id));
    changes.on("agent", (name) => agents.invalidate(name));
    const trustedProxies = config.trusted_proxies.length > 0 ? parseCidrList(config.trusted_proxies) : null;
    const tokenModule = await createTokensModule({
      db,
      clock,
      logger,
      metrics,
      audit,
      changes,
      signingKeys,
      keys,
      integrity: integrity.keys,
      agentExists: async (name) => (await agents.load(name)) !== null,
      mayCall: (from, to) => credentials.grants.mayCall(from, to),
      issuer: () => issuer,
      trustedProxies,
      trustedIssuers: config.trusted_issuers,
      rateLimit: keyRateLimit({ rateLimiter, shared: limits.shared }),
      settings: {
        maxLifetimeS: config.token_max_lifetime_s,
        refreshLifetimeS: config.refresh_token_lifetime_s,
        maxActDepth: config.max_delegation_depth,
        longestTokenS: Math.max(config.token_max_lifetime_s, config.upstream_token_ttl_s),
      },
    });
    cleanups.unshift(() => tokenModule.close());
    const { callerAuth } = tokenModule;
    const gateway = createGatewayModule({
      clock,
      metrics,
      audit,
      auth: callerAuth,
      agents,
      rateLimiter,
      usage,
      sharedLimits: limits.shared,
      signer: signingKeys,
      issuer: () => issuer,
      settings: {
        upstreamTimeoutMs: config.upstream_timeout_ms,
        upstreamTokenTtlS: config.upstream_token_ttl_s,
        denials: config.audit,
      },
    });
    cleanups.unshift(() => gateway.close());
    keys.onChange((id, action) => {
      gateway.tokens.forgetKey(id);
      if (action === "invalidate") return;
      metrics.adminChanges.inc({ action });
      if (action === "key.rotate") metrics.rotations.inc({ kind: "key" });
    });
    // A revoked access token ends the event streams it opened (a key's changes end theirs), and
    // an upstream JWT revoked by its jti leaves the gateway's cache.
    tokenModule.onTokenRevoked((jti) => credentials.events.dropToken(jti));
    tokenModule.onTokenRevoked((jti) => gateway.tokens.forgetJti(jti));
    changes.on("signing_key", tokenModule.reloadSigningKeys);
    // This replica may have missed changes (the change log was unreadable too long, or pruned
    // past it): drop everything cached; what is still valid is read again on next use.
    changes.onReset(() => {
      keys.invalidateAll();
      gateway.tokens.clear();
      agents.invalidate();
      tokenModule.reloadSigningKeys();
    });

    // Per-user tool credentials; `users.source` is what the MCP gateway resolves from.
    const users = createUsersModule({
      db,
      keyring,
      clock,
      audit,
      changes,
      logger,
      metrics,
      grantedUserCredentials: (agent) => credentials.grants.userCredentials(agent),
    });
    cleanups.unshift(() => users.close());
    // `/mcp/{server}` (SPEC §8): one upstream per (server, user), stopped at shutdown.
    const mcp = createMcpModule({
      config: config.mcp,
      configDir: configDir(config),
      credentials: users.source,
      audit,
      metrics,
      logger,
      auth: callerAuth,
    });
    cleanups.unshift(() => mcp.close());

    const router = new Router();
    registerOpsRoutes(router, { db, metrics, metricsToken: config.metrics_token, jwks: () => signingKeys.jwks() });
    registerAgentRoutes(router, { agents, requireAdmin });
    registerConsumerRoutes(router, { consumers, requireAdmin });
    registerKeyRoutes(router, { keys, clock, requireAdmin });
    registerAuditRoutes(router, {
      audit,
      requireAdmin: async (ctx) => (await requireAdmin(ctx)).principal,
      checkpointMacValid: auditChain.checkpointMacValid,
    });
    gateway.register(router);
    tokenModule.register(router, requireAdmin);
    credentials.register(router, { requireAdmin, auth: callerAuth });
    users.register(router, { requireAdmin, auth: callerAuth });
    mcp.register(router);
    registerMasterKeyRoutes(router, {
      db,
      keyring,
      columns: () => [SIGNING_KEYS_SEALED, INTEGRITY_ROOT_SEALED, ...credentials.sealedColumns, ...users.sealedColumns],
      audit,
      requireAdmin,
    });
    await credentials.start();
    const egress = createEgressModule({
      store: createCredentialsStore(db),
      credentialMode: (agent, name) => credentials.grants.credentialMode(agent, name),
      open: (v) => credentials.credentials.openVersion(v),
      pointerIntact: (row) => credentials.credentials.pointerIntact(row),
      auth: callerAuth,
      audit,
      changes,
      metrics,
      logger,
      clock,
      timeoutMs: config.upstream_timeout_ms,
    });
    cleanups.unshift(() => egress.close());

    const http = createHttpServer({
      router,
      gateway: gateway.handler,
      egress: egress.handler,
      logger,
      metrics,
      timeouts: config.http,
    });
    const address = await http.listen(config.port, config.host);
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    if (!config.issuer) issuer = url;
    logger.info({ url, store: db.engine, issuer, audit_fail_closed: config.audit_fail_closed }, "keyward started");

    let closing: Promise<void> | undefined;
    return {
      url,
      address,
      generatedAdminToken: generated,
      close() {
        closing ??= (async () => {
          logger.info("keyward stopping: draining in-flight requests");
          // Event streams never finish on their own: end them first, or they hold the drain open.
          credentials.close();
          await http.close(config.shutdown_timeout_ms);
          for (const c of cleanups) await c();
        })();
        return closing;
      },
    };
  } catch (err) {
    for (const c of cleanups) await Promise.resolve(c()).catch(() => {});
    throw err;
  }
}
