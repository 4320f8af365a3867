import type { Clock } from "../clock.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import type { RequestContext, Router } from "../http/router.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { AUDIT_CHECKPOINT_INTERVAL_MS, createAuditChainState, startAuditCheckpoints } from "./audit-checkpoints.js";
import { createAuditLog } from "./audit-log.js";
import { registerAuditRoutes } from "./audit-routes.js";

/**
 * The audit log, wired (SPEC §7): the hash chain keyed from the integrity root, the group-commit
 * writer, the checkpoints emitted outside the database, and the list/verify routes.
 */
export function createAuditModule(deps: {
  db: Db;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  integrity: { auditKeyedFrom: number; keys: IntegrityKeys };
  settings: { failClosed: boolean; writeTimeoutMs: number };
}) {
  const { logger } = deps;
  const chain = createAuditChainState({ keyedFrom: deps.integrity.auditKeyedFrom, keys: deps.integrity.keys });
  const checkpoints = startAuditCheckpoints({ chain, logger, intervalMs: AUDIT_CHECKPOINT_INTERVAL_MS });
  const audit = createAuditLog({
    db: deps.db,
    clock: deps.clock,
    logger,
    metrics: deps.metrics,
    failClosed: deps.settings.failClosed,
    writeTimeoutMs: deps.settings.writeTimeoutMs,
    chain,
  });

  return {
    audit,

    register(router: Router, requireAdmin: (ctx: RequestContext) => Promise<{ principal: string }>): void {
      registerAuditRoutes(router, {
        audit,
        requireAdmin: async (ctx) => (await requireAdmin(ctx)).principal,
        checkpointMacValid: chain.checkpointMacValid,
      });
    },

    /** Flushes the log, then stops the checkpoints: the last checkpoint covers everything. */
    async close(): Promise<void> {
      try {
        await audit.close();
      } finally {
        checkpoints.stop();
      }
    },
  };
}

export type AuditModule = ReturnType<typeof createAuditModule>;
