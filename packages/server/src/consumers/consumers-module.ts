import type { Actor } from "../admin/admin-context.js";
import type { OwnedKeys } from "../admin/audited-change.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { ChangeFeed } from "../cluster/change-feed.js";
import type { RequestContext, Router } from "../http/router.js";
import type { Db } from "../store/db.js";
import { registerConsumerRoutes } from "./consumers-routes.js";
import { createConsumersService } from "./consumers-service.js";
import { createConsumersStore } from "./consumers-store.js";

/** The callers of agents, wired (SPEC §3): store, service and admin routes. */
export function createConsumersModule(deps: {
  db: Db;
  clock: Clock;
  audit: AuditSink;
  changes: ChangeFeed;
  /** The keys a consumer owns, revoked with it (keys module). */
  ownedKeys: OwnedKeys;
}) {
  const consumers = createConsumersService({
    db: deps.db,
    store: createConsumersStore(deps.db),
    clock: deps.clock,
    audit: deps.audit,
    ownedKeys: deps.ownedKeys,
    feed: deps.changes,
  });

  return {
    consumers,

    register(router: Router, requireAdmin: (ctx: RequestContext) => Promise<Actor>): void {
      registerConsumerRoutes(router, { consumers, requireAdmin });
    },
  };
}

export type ConsumersModule = ReturnType<typeof createConsumersModule>;
