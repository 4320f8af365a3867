import type { Actor } from "../admin/admin-context.js";
import type { OutcomeTap } from "../anomaly/outcomes.js";
import type { Clock } from "../clock.js";
import type { RequestContext, Router } from "../http/router.js";
import type { QuotaUse } from "../limits/usage.js";
import type { Logger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { createQuotaThresholds, type QuotaEmitter } from "./quota-thresholds.js";
import type { UsageConfig } from "./usage-config.js";
import { registerUsageRoutes } from "./usage-routes.js";
import { createUsageService } from "./usage-service.js";
import { createUsageStore } from "./usage-store.js";

export interface UsageModuleDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  outcomes: OutcomeTap;
  settings: UsageConfig;
  /** Throws not_found for an unknown key id. */
  getKey: (id: string) => Promise<unknown>;
  /** `quota.threshold` events: the quota tracker's units taken, and where events go (absent: none). */
  quotaEvents?: { quotas: { onUsed(listener: (use: QuotaUse) => void): void }; emitter: QuotaEmitter };
}

/** Per-key usage analytics, wired (SPEC §10): counting from the outcome tap, the store, the admin routes. */
export function createUsageModule(deps: UsageModuleDeps) {
  const store = createUsageStore(deps.db);
  const usage = createUsageService({ ...deps, store });
  if (deps.quotaEvents) {
    const thresholds = createQuotaThresholds({ ...deps, store, emitter: deps.quotaEvents.emitter });
    deps.quotaEvents.quotas.onUsed(thresholds.observe);
  }
  return {
    usage,
    store,

    register(router: Router, requireAdmin: (ctx: RequestContext) => Promise<Actor>): void {
      registerUsageRoutes(router, { usage, getKey: deps.getKey, requireAdmin });
    },

    close: () => usage.close(),
  };
}

export type UsageModule = ReturnType<typeof createUsageModule>;
