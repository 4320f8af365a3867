import type { Actor } from "../admin/admin-context.js";
import type { OwnedKeys } from "../admin/audited-change.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { ChangeFeed } from "../cluster/change-feed.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import type { RequestContext, Router } from "../http/router.js";
import type { Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import type { TransactionalEmitter } from "../webhooks/webhook-events.js";
import { registerKeyRoutes } from "./keys-routes.js";
import { createKeysService } from "./keys-service.js";
import { createKeysStore } from "./keys-store.js";

export interface KeysModuleDeps {
  db: Db;
  clock: Clock;
  audit: AuditSink;
  changes: ChangeFeed;
  metrics: Metrics;
  /** Keys the stored hashes (crypto/secret-format.ts `hashSecret`). */
  integrity: IntegrityKeys;
  /**
   * Whether a key's owner exists: agents and consumers are built after this module (they revoke
   * their keys through `ownedKeys`), so these are only called once everything is built.
   */
  owners: { agentExists: (name: string) => Promise<boolean>; consumerExists: (name: string) => Promise<boolean> };
  /** Where key.revoked / key.frozen / key.rotated are enqueued (webhooks). */
  events?: TransactionalEmitter;
}

/**
 * API keys, wired (SPEC §3): the store, the service with its in-memory key cache (dropped on every
 * replica through the change feed), the admin routes, and what an owner's delete revokes.
 */
export function createKeysModule(deps: KeysModuleDeps) {
  const { db, clock, metrics } = deps;
  const store = createKeysStore(db);
  const keys = createKeysService({
    db,
    store,
    clock,
    audit: deps.audit,
    integrity: deps.integrity,
    feed: deps.changes,
    ...(deps.events ? { events: deps.events } : {}),
    ownerExists: async (owner) => {
      const [kind, name] = owner.split(/:(.*)/s) as [string, string];
      if (kind === "consumer") return deps.owners.consumerExists(name);
      if (kind === "agent") return deps.owners.agentExists(name);
      return kind === "user";
    },
    onLookup: (hit) => metrics.cacheLookups.inc(hit ? "hit" : "miss"),
  });
  // Deleting an owner revokes its keys in the same transaction; the cache drops them after.
  const ownedKeys: OwnedKeys = {
    revokeIn: (tx: Db, owner: string) => store.revokeOwnedBy(tx, owner, clock.now()),
    revoked: (ids: readonly string[]) => {
      for (const id of ids) keys.invalidate(id);
    },
  };
  deps.changes.on("key", (id) => keys.invalidate(id));
  keys.onChange((_id, action) => {
    if (action === "invalidate") return;
    metrics.adminChanges.inc({ action });
    if (action === "key.rotate") metrics.rotations.inc({ kind: "key" });
  });

  return {
    keys,
    ownedKeys,

    register(router: Router, requireAdmin: (ctx: RequestContext) => Promise<Actor>): void {
      registerKeyRoutes(router, { keys, clock, requireAdmin });
    },
  };
}

export type KeysModule = ReturnType<typeof createKeysModule>;
