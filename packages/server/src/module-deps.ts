import type { AuditSink } from "./audit/audit-sink.js";
import type { Clock } from "./clock.js";
import type { ChangeFeed } from "./cluster/change-feed.js";
import type { Keyring } from "./crypto/keyring.js";
import type { Logger } from "./ops/logger.js";
import type { Metrics } from "./ops/metrics.js";
import type { Db } from "./store/db.js";

/** What every domain module that keeps sealed state is built from (app.ts hands the same ones to each). */
export interface SealedModuleDeps {
  db: Db;
  keyring: Keyring;
  clock: Clock;
  audit: AuditSink;
  changes: ChangeFeed;
  logger: Logger;
  metrics: Metrics;
}
