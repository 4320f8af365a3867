import type { Actor } from "../admin/admin-context.js";
import { createAgentsStore } from "../agents/agents-store.js";
import type { CallerAuth } from "../auth/caller-auth.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import type { RequestContext, Router } from "../http/router.js";
import type { SealedModuleDeps } from "../module-deps.js";
import type { Db } from "../store/db.js";
import type { TransactionalEmitter } from "../webhooks/webhook-events.js";
import { registerAgentCredentialRoutes } from "./agent-credentials-routes.js";
import { createAgentViews } from "./agent-view.js";
import { createCredentialEvents, type StreamLimits } from "./credential-events.js";
import { createCredentialIntegrity } from "./credential-integrity.js";
import { registerCredentialRoutes } from "./credentials-routes.js";
import { createCredentialsService } from "./credentials-service.js";
import { CREDENTIAL_SEALED_COLUMNS, createCredentialsStore } from "./credentials-store.js";
import { registerGrantRoutes } from "./grants-routes.js";
import { createGrantsService } from "./grants-service.js";
import { createGrantsStore } from "./grants-store.js";
import { createTokenProviders, type RefreshTimers } from "./token-providers.js";

export interface CredentialsModuleOptions {
  /** SSE heartbeat interval (default 15 s; tests shorten it). */
  heartbeatMs?: number;
  /** The fetch token providers use (tests may point it elsewhere). */
  fetch?: typeof fetch;
  tokenTimeoutMs?: number;
  /** Refresh timers; tests that drive `providers.runDue()` with a frozen clock pass inert ones. */
  refreshTimers?: RefreshTimers;
  /** Caps on open event streams (config `streams`); default DEFAULT_STREAM_LIMITS. */
  streams?: StreamLimits;
  /** `credential.changed` and `token_provider.failing` go here (webhooks). */
  events?: TransactionalEmitter;
}

/**
 * The outbound-credentials domain, wired: the store and its services, the agent views and SSE
 * hub, token providers, and the change handlers that keep all of them fresh on every replica.
 */
export function createCredentialsModule(
  deps: SealedModuleDeps & {
    /** The integrity root's subkeys: pointers and grants are MACed with them. */
    integrity: IntegrityKeys;
  },
  opts: CredentialsModuleOptions = {},
) {
  const { db, keyring, clock, audit, changes, logger } = deps;
  const integrity = createCredentialIntegrity({ keys: deps.integrity, audit, logger, clock });
  const store = createCredentialsStore(db);
  const grantsStore = createGrantsStore(db);
  const agentsStore = createAgentsStore(db);
  const credentials = createCredentialsService({
    db,
    store,
    grants: grantsStore,
    keyring,
    clock,
    audit,
    changes,
    integrity,
    ...(opts.events ? { events: opts.events } : {}),
    onCommitted: (action) => {
      if (action !== "credential.refresh") deps.metrics.adminChanges.inc({ action });
      if (action === "credential.update" || action === "credential.rollback" || action === "credential.refresh") {
        deps.metrics.rotations.inc({ kind: "credential" });
      }
    },
  });
  const grants = createGrantsService({
    db,
    store: grantsStore,
    credentials: store,
    agentExists: async (tx, name) => (await agentsStore.get(name, tx)) !== undefined,
    audit,
    changes,
    integrity,
  });
  const views = createAgentViews({ store: grantsStore, open: credentials.openVersion, clock, logger, integrity });
  const events = createCredentialEvents({
    views,
    clock,
    logger,
    heartbeatMs: opts.heartbeatMs ?? 15_000,
    ...(opts.streams ? { limits: opts.streams } : {}),
  });
  const providers = createTokenProviders({
    store,
    service: credentials,
    clock,
    logger,
    audit,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
    ...(opts.tokenTimeoutMs ? { timeoutMs: opts.tokenTimeoutMs } : {}),
    ...(opts.refreshTimers ? { timers: opts.refreshTimers } : {}),
    // Logged and counted by the emitter if the outbox is unwritable: the refresh goes on regardless.
    onFailing: (name, attempt) => void opts.events?.emit("token_provider.failing", { name, attempt, status: "error" }),
  });

  changes.on("credential", (name) => {
    views.credentialChanged(name);
    events.credentialChanged(name);
    providers.credentialChanged(name);
  });
  const grantChanged = (agent: string) => {
    grants.invalidate(agent);
    views.grantChanged(agent);
    events.grantChanged(agent);
  };
  changes.on("grant", grantChanged);
  // A deleted agent's grants went with it (removeAgentIn); its change is the agent's own.
  changes.on("agent", grantChanged);
  changes.on("key", (id) => events.dropKey(id));
  changes.onReset(() => {
    grants.invalidate();
    views.reset();
    events.resyncAll();
    void providers.start().catch((err: Error) => logger.warn({ err: err.message }, "cannot plan token refreshes"));
  });

  return {
    credentials,
    grants,
    views,
    events,
    providers,
    sealedColumns: CREDENTIAL_SEALED_COLUMNS,

    register(router: Router, auth: { requireAdmin: (ctx: RequestContext) => Promise<Actor>; auth: CallerAuth }) {
      registerCredentialRoutes(router, { credentials, providers, requireAdmin: auth.requireAdmin });
      registerGrantRoutes(router, { grants, requireAdmin: auth.requireAdmin });
      registerAgentCredentialRoutes(router, {
        auth: auth.auth,
        views,
        events,
        audit,
        metrics: deps.metrics,
      });
    },

    /** Plans every token provider's next refresh. */
    start: () => providers.start(),

    /**
     * Inside an agent's delete transaction: its grants go too, so an agent created later under
     * the same name starts with none. The delete's own `agent` change drops the caches.
     */
    removeAgentIn: (tx: Db, agent: string) => grants.removeAgentIn(tx, agent),

    /** First step of shutdown: event streams end (they would hold the drain open), refreshes stop. */
    close(): void {
      events.close();
      providers.close();
    },
  };
}

export type CredentialsModule = ReturnType<typeof createCredentialsModule>;
