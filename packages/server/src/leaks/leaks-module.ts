import type { AlertRaiser } from "../anomaly/alert-types.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { Router } from "../http/router.js";
import type { KeysService } from "../keys/keys-service.js";
import type { Logger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import type { LeaksConfig } from "../webhooks/webhooks-config.js";
import { reporterKeys } from "./leak-signature.js";
import { registerLeakRoutes } from "./leaks-routes.js";
import { createLeaksService } from "./leaks-service.js";
import { createLeaksStore } from "./leaks-store.js";

/** Leaked-key reports (`leaks:` in the config; without public keys the endpoint answers 404). */
export function createLeaksModule(deps: {
  db: Db;
  clock: Clock;
  logger: Logger;
  audit: AuditSink;
  keys: KeysService;
  alerts: AlertRaiser;
  config: LeaksConfig | undefined;
}) {
  const { config } = deps;
  const enabled = config !== undefined && config.public_keys.length > 0;
  const keys = reporterKeys(enabled ? config.public_keys : []);
  const leaks = enabled
    ? createLeaksService({
        ...{ keys: deps.keys, alerts: deps.alerts, audit: deps.audit, clock: deps.clock, logger: deps.logger },
        store: createLeaksStore(deps.db),
        action: config.action,
        replayWindowS: config.replay_window_s,
      })
    : undefined;
  return {
    leaks,
    register(router: Router): void {
      registerLeakRoutes(router, { leaks, keys });
    },
  };
}
