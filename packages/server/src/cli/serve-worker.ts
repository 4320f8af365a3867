import { AggregatorRegistry, type Registry } from "prom-client";
import { startKeyward } from "../app.js";
import type { Config } from "../config.js";
import type { Logger } from "../ops/logger.js";
import { createIpcChangeFeed, type IpcChangeFeed } from "../workers/ipc-change-feed.js";
import { createIpcPermitBank } from "../workers/ipc-permit-bank.js";
import { createRpc, type IpcEndpoint, type Rpc } from "../workers/ipc-rpc.js";
import type { WorkerHooks } from "../workers/worker-hooks.js";
import { drainOnSignal } from "./drain-on-signal.js";

/** Set by the primary in each worker's environment: which worker this is (1…N). */
export const WORKER_INDEX_ENV = "KEYWARD_WORKER_INDEX";

/** How long a scrape waits for the other workers' metrics. */
const METRICS_TIMEOUT_MS = 2000;

/** What a worker tells the primary once it listens. */
export interface WorkerReady {
  url: string;
  /** The first admin token, when this worker's start created it (only the first worker can). */
  generatedAdminToken: string | null;
}

/**
 * One worker of `keyward serve --workers N`: startKeyward as a single server runs it, except that
 * the primary holds the SQLite lock, changes reach the siblings through the primary before an admin
 * call answers (and other replicas through the replicas' feed on PostgreSQL), and limits without
 * Redis take permits from the primary.
 * It prints nothing on stdout (the primary prints the listening line); SIGTERM or SIGINT drains it
 * like a single server (SPEC §1) and it exits 0.
 *
 * Returns the worker's stop function; `fail` is how a start that failed is reported (one line).
 */
export async function runWorker(
  config: Config,
  workers: number,
  logger: Logger,
  fail: (err: unknown) => never,
): Promise<void> {
  let relay: IpcChangeFeed | undefined;
  let rpc: Rpc | undefined;
  let registry: Registry | undefined;
  const ipcBank = createIpcPermitBank(() => rpc);
  rpc = createRpc(process as unknown as IpcEndpoint, {
    // Before this worker's feed exists it has cached nothing: there is nothing to drop.
    changes: (payload) => relay?.apply(payload),
    reset: () => relay?.reset(),
    // The primary gathers every worker's metrics for whichever worker is scraped.
    metricsJson: () => registry?.getMetricsAsJSON() ?? [],
    ...ipcBank.handlers,
  });
  const hooks: WorkerHooks = {
    sqliteLockHeld: true,
    changeFeed(opened) {
      relay = createIpcChangeFeed(opened, () => rpc);
      return relay.feed;
    },
    permitBank: ipcBank.bank,
    processes: workers,
    shareMetrics(own) {
      registry = own;
      const mine = own.metrics.bind(own);
      // One scrape, every worker: counters summed (prom-client's cluster aggregation). Should the
      // primary not answer, this worker's own figures are better than no answer.
      own.metrics = async () => {
        try {
          const all = (await rpc?.call("metrics", null, METRICS_TIMEOUT_MS)) as Parameters<
            typeof AggregatorRegistry.aggregate
          >[0];
          return await AggregatorRegistry.aggregate(all).metrics();
        } catch {
          return mine();
        }
      };
    },
  };

  let running: Awaited<ReturnType<typeof startKeyward>>;
  try {
    running = await startKeyward(config, { logger, warn: (msg) => logger.warn(msg), worker: hooks });
  } catch (err) {
    fail(err);
  }
  drainOnSignal(running, logger);
  const ready: WorkerReady = { url: running.url, generatedAdminToken: running.generatedAdminToken ?? null };
  rpc.notify("ready", ready);
}
