import type { AddressInfo } from "node:net";
import { createAdminModule } from "./admin/admin-module.js";
import { withOutcomes } from "./anomaly/outcome-auth.js";
import { type Base, buildDomains, buildEgress, type Core, type Domains, type StartOptions } from "./app-domains.js";
import { createAuditModule } from "./audit/audit-module.js";
import { loadKeyring, openLockedStore } from "./boot.js";
import { systemClock } from "./clock.js";
import { openChangeFeed } from "./cluster/open-change-feed.js";
import { type Config, configDir } from "./config.js";
import { createConsoleModule } from "./console/console-module.js";
import { macExistingCredentialRows } from "./credentials/integrity-upgrade.js";
import { openIntegrity } from "./crypto/integrity-root.js";
import { markLegacyHashes } from "./crypto/legacy-hashes.js";
import { createSigningKeys } from "./crypto/signing-keys.js";
import { parseCidrList } from "./http/client-ip.js";
import { registerOpenApiRoute } from "./http/openapi-routes.js";
import { registerOpsRoutes } from "./http/ops-routes.js";
import { Router } from "./http/router.js";
import { createHttpServer } from "./http/server.js";
import { createLogger } from "./ops/logger.js";
import { createMetrics } from "./ops/metrics.js";

// app.ts only composes: each domain's *-module.ts builds its parts from what it is handed; this
// file opens the store and what every domain rests on, has app-domains.ts build the domains in
// dependency order, mounts their routes, and starts and stops them.

export type { StartOptions } from "./app-domains.js";

export interface RunningKeyward {
  /** `http://host:port` the server listens on. */
  url: string;
  address: AddressInfo;
  /** The generated first admin token, when this start created one (print once, never again). */
  generatedAdminToken: string | undefined;
  close(): Promise<void>;
}

/** Builds every part from the configuration, wires them, and starts listening. */
export async function startKeyward(config: Config, opts: StartOptions = {}): Promise<RunningKeyward> {
  const logger = opts.logger ?? createLogger({ level: config.log_level });
  const keyring = loadKeyring(config, opts.warn ?? ((msg) => logger.warn(msg)));
  const store = await openLockedStore(config, { lockHeld: opts.worker?.sqliteLockHeld === true });
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
    opts.worker?.shareMetrics(base.metrics.registry);
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
async function buildCore(base: Base): Promise<Core> {
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
  const opened = await openChangeFeed({
    ...{ db, clock, logger },
    databaseUrl: config.database_url,
    redisUrl: config.redis_url,
    reconcileIntervalMs: config.reconcile_interval_ms,
    maxStalenessMs: config.max_staleness_ms,
  });
  // A worker of `serve --workers N` hears its siblings' changes through the primary.
  const changes = base.opts.worker?.changeFeed(opened) ?? opened;
  base.onClose(() => changes.close());
  const { audit } = auditModule;
  const signingKeys = createSigningKeys({ db, keyring, clock });
  await signingKeys.init();
  const admin = await createAdminModule(
    {
      ...{ db, clock, integrity: integrity.keys, keyring, audit },
      trustedProxies: config.trusted_proxies.length > 0 ? parseCidrList(config.trusted_proxies) : null,
      sessions: config.admin_sessions,
    },
    config.admin_token,
  );
  if (admin.configuredIgnored) {
    // Names the setting, never the value.
    logger.warn(
      { setting: "KEYWARD_ADMIN_TOKEN" },
      "KEYWARD_ADMIN_TOKEN (admin_token) is set but not used: this store already has admin tokens and it is not one of them (it only sets the first admin token of an empty store). Use an admin token of this store, another --data-dir, or `keyward admin-token reset`",
    );
  }
  return { ...base, integrity: integrity.keys, auditModule, audit, changes, signingKeys, admin };
}

/** Every route, in the order they were always mounted. */
function mountRoutes(d: Domains): Router {
  const router = new Router();
  const { requireAdmin } = d.admin;
  registerOpsRoutes(router, { db: d.db, metrics: d.metrics, metricsToken: d.config.metrics_token });
  registerOpenApiRoute(router, d.admin.documentAccess);
  d.agents.register(router, requireAdmin);
  d.consumers.register(router, requireAdmin);
  d.keys.register(router, requireAdmin);
  d.webhooks.register(router, requireAdmin);
  d.analytics.register(router, requireAdmin);
  d.anomaly.register(router, requireAdmin);
  d.leaks.register(router);
  d.auditModule.register(router, requireAdmin);
  d.gateway.register(router);
  d.tokens.register(router, requireAdmin, d.oauth.atToken);
  d.oauth.register(router, d.tokens.clientIp, requireAdmin);
  // Credential reads and tools report their callers' outcomes (usage, anomaly detectors).
  const tapped = (surface: "credentials" | "tools") => ({
    requireAdmin,
    auth: withOutcomes(d.tokens.callerAuth, d.outcomes, d.clock, surface),
  });
  d.credentials.register(router, tapped("credentials"));
  d.users.register(router, tapped("tools"));
  d.mcp.register(router);
  d.admin.register(router, () => [...d.credentials.sealedColumns, ...d.users.sealedColumns]);
  createConsoleModule({ config: d.config.console, configDir: configDir(d.config) }).register(router);
  return router;
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
    accessLog: config.access_log,
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
