import type { Actor } from "../admin/admin-context.js";
import type { OwnedKeys } from "../admin/audited-change.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { ChangeFeed } from "../cluster/change-feed.js";
import type { RequestContext, Router } from "../http/router.js";
import type { Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { registerAgentRoutes } from "./agents-routes.js";
import { createAgentsService } from "./agents-service.js";
import { createAgentsStore } from "./agents-store.js";

export interface AgentsModuleDeps {
  db: Db;
  clock: Clock;
  audit: AuditSink;
  changes: ChangeFeed;
  metrics: Metrics;
  /** The keys an agent owns, revoked with it (keys module). */
  ownedKeys: OwnedKeys;
  /** Inside an agent's delete transaction: its grants go too (credentials module `removeAgentIn`). */
  removeGrantsIn: (tx: Db, agent: string) => Promise<unknown>;
}

/**
 * The protected upstreams, wired (SPEC §3): the store, the service with its routing cache (dropped
 * on every replica through the change feed) and the admin routes.
 */
export function createAgentsModule(deps: AgentsModuleDeps) {
  const { ownedKeys } = deps;
  // An agent's delete also removes its grants, in the same transaction.
  const agentOwned: OwnedKeys = {
    ...ownedKeys,
    revokeIn: async (tx: Db, owner: string) => {
      await deps.removeGrantsIn(tx, owner.slice("agent:".length));
      return ownedKeys.revokeIn(tx, owner);
    },
  };
  const agents = createAgentsService({
    db: deps.db,
    store: createAgentsStore(deps.db),
    clock: deps.clock,
    audit: deps.audit,
    ownedKeys: agentOwned,
    feed: deps.changes,
  });
  agents.onChange((_name, action) => deps.metrics.adminChanges.inc({ action }));
  deps.changes.on("agent", (name) => agents.invalidate(name));

  return {
    agents,
    exists: async (name: string) => (await agents.load(name)) !== null,

    register(router: Router, requireAdmin: (ctx: RequestContext) => Promise<Actor>): void {
      registerAgentRoutes(router, { agents, requireAdmin });
    },
  };
}

export type AgentsModule = ReturnType<typeof createAgentsModule>;
