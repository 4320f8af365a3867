import type { Registry } from "prom-client";
import type { ChangeFeed } from "../cluster/change-feed.js";
import type { PermitBank } from "../limits/permit-bank.js";

/**
 * What a worker of `keyward serve --workers N` changes in startKeyward (cli/serve-worker.ts
 * builds it; app.ts applies it). Absent, startKeyward is the single process it always was.
 */
export interface WorkerHooks {
  /** The primary holds the SQLite file's lock for every worker it starts. */
  readonly sqliteLockHeld: true;
  /** The change feed this worker uses, given the one opened for its configuration. */
  changeFeed(opened: ChangeFeed): ChangeFeed;
  /** Where shared limits take permits when there is no Redis: the primary's bank, over IPC. */
  readonly permitBank: PermitBank;
  /** Makes `registry.metrics()` (GET /metrics) answer for every worker of the primary, summed. */
  shareMetrics(registry: Registry): void;
  /** How many workers share that bank (and, with Redis, this replica's share of it): lease sizes divide by it. */
  readonly processes: number;
}
