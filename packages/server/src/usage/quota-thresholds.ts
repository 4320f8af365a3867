import { createBoundedCache } from "@keyward/sdk/cache";
import type { Clock } from "../clock.js";
import type { QuotaUse } from "../limits/usage.js";
import type { Logger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import type { WebhookEventType } from "../webhooks/webhook-events.js";
import type { UsageStore } from "./usage-store.js";

/** Percentages of a key's quota announced as `quota.threshold`, highest first. */
export const QUOTA_THRESHOLDS = [100, 80] as const;
/** Crossings remembered in memory, so a key at 95 % does not ask the store on every request. */
const REMEMBERED = 50_000;

/** What announces an event in the same transaction as the claim (webhooks-service's TransactionalEmitter). */
export interface QuotaEmitter {
  emitIn(tx: Db, type: WebhookEventType, data: Record<string, unknown>): Promise<void>;
}

export interface QuotaThresholdsDeps {
  db: Db;
  store: Pick<UsageStore, "claimThresholdIn">;
  clock: Clock;
  logger: Pick<Logger, "warn">;
  emitter: QuotaEmitter;
}

/**
 * `quota.threshold` at 80 % and 100 % of a key's quota: once per key lineage, period and
 * threshold on any number of replicas. `observe` runs on the request path and is memory only (a
 * multiplication, and a map lookup once past 80 %); the first crossing seen here claims the
 * threshold's row and enqueues the event in one transaction, so a claim never goes unannounced and
 * a second replica's claim finds the row and stays silent.
 */
export function createQuotaThresholds(deps: QuotaThresholdsDeps) {
  const { db, store, clock, logger, emitter } = deps;
  // Crossings already claimed here; a full table forgets the least recently seen one at a time.
  const seen = createBoundedCache<string, true>({ max: REMEMBERED });

  async function announce(u: QuotaUse, threshold: number, id: string): Promise<void> {
    try {
      await db.transaction(async (tx) => {
        if (!(await store.claimThresholdIn(tx, u.lineage, u.periodStart, threshold, clock.now()))) return;
        await emitter.emitIn(tx, "quota.threshold", {
          key_id: u.lineage,
          threshold,
          used: u.used,
          limit: u.limit,
          period: u.period,
          period_start: new Date(u.periodStart).toISOString(),
        });
      });
    } catch (err) {
      // Not claimed: the next request past the threshold tries again.
      seen.delete(id);
      logger.warn(
        { err: (err as Error).message, key_id: u.lineage, threshold },
        "quota threshold not announced; will retry",
      );
    }
  }

  return {
    observe(u: QuotaUse): void {
      if (u.used * 100 < QUOTA_THRESHOLDS[1] * u.limit) return;
      for (const threshold of QUOTA_THRESHOLDS) {
        if (u.used * 100 < threshold * u.limit) continue;
        const id = `${u.lineage}\0${u.periodStart}\0${threshold}`;
        if (seen.has(id)) continue;
        seen.set(id, true);
        void announce(u, threshold, id);
      }
    },
  };
}
