import cluster, { type Worker } from "node:cluster";
import { loadKeyring, lockStoreFile } from "../boot.js";
import type { Config } from "../config.js";
import type { PermitBank } from "../limits/permit-bank.js";
import type { Logger } from "../ops/logger.js";
import { RELAY_TIMEOUT_MS } from "../workers/ipc-change-feed.js";
import { servePermitBank } from "../workers/ipc-permit-bank.js";
import { createRpc, type Rpc } from "../workers/ipc-rpc.js";
import { createRestartPolicy, DEFAULT_RESTART, type RestartPolicy } from "../workers/restart-policy.js";
import { WORKER_INDEX_ENV, type WorkerReady } from "./serve-worker.js";

/** How long the primary waits for one worker's metrics during a scrape. */
const METRICS_TIMEOUT_MS = 1500;
/** Beyond `shutdown_timeout_ms`: what a draining worker gets to flush its audit log and close the store. */
const DRAIN_MARGIN_MS = 10_000;

interface Member {
  index: number;
  worker: Worker;
  rpc: Rpc;
  ready: boolean;
}

export interface PrimaryOptions {
  config: Config;
  count: number;
  logger: Logger;
  /** The one bank every worker takes permits from when there is no Redis. */
  bank: PermitBank;
  /** Lines for stdout (the listening line, a generated admin token). */
  print(line: string): void;
  /** Stops the process with `code` once the log is flushed. */
  exit(code: number): void;
  restart?: typeof DEFAULT_RESTART;
}

/**
 * The primary of `keyward serve --workers N` (node:cluster: the workers share the port; the
 * primary accepts and hands connections round-robin). It serves no request itself. It:
 *
 * - does what must happen once before any worker: the master key (created on a first SQLite start)
 *   and the SQLite file's lock, held for all its workers;
 * - starts worker 1 alone, so migrations and the first admin token happen once, then the others;
 *   prints the admin token (if worker 1 created one) and the listening line once all listen;
 * - relays each change a worker publishes to every sibling and answers once they applied it (on
 *   PostgreSQL the workers are also replicas on the change log, which covers other replicas);
 * - lends permits from one in-memory bank to workers without Redis;
 * - restarts a worker that exits unexpectedly, with backoff, telling the others to drop their
 *   caches first (it may have committed a change it never relayed); a crash loop stops it all;
 * - on SIGTERM/SIGINT drains every worker (each finishes in-flight requests and flushes its audit
 *   log, SPEC §1) and exits 0.
 */
export function runPrimary(opts: PrimaryOptions): void {
  const { config, logger, bank } = opts;
  const policy: RestartPolicy = createRestartPolicy(opts.restart ?? DEFAULT_RESTART);
  // Once, before any worker: a worker would race its siblings to create the master key file.
  loadKeyring(config, (msg) => logger.warn(msg));
  const lock = lockStoreFile(config);
  // Structured clone, not JSON: a quota in total is a counter with `windowMs: Infinity`.
  cluster.setupPrimary({ serialization: "advanced" });
  const members = new Map<number, Member>();
  let started = false;
  let stopping = false;
  let exitCode = 0;
  let firstReady: WorkerReady | undefined;

  function start(index: number): void {
    const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(index) });
    const member: Member = {
      index,
      worker,
      ready: false,
      rpc: createRpc(worker, {
        ...servePermitBank(bank, () => member.rpc),
        changes: (payload) => relay(member, payload),
        metrics: () => gatherMetrics(),
        ready: (body) => onReady(member, body as WorkerReady),
      }),
    };
    members.set(index, member);
    worker.on("exit", (code, signal) => onExit(member, code, signal));
  }

  /** A change one worker published, applied by all the others before the publisher's call returns. */
  async function relay(from: Member, payload: unknown): Promise<void> {
    const others = [...members.values()].filter((m) => m !== from);
    const results = await Promise.allSettled(others.map((m) => m.rpc.call("changes", payload, RELAY_TIMEOUT_MS)));
    if (results.some((r) => r.status === "rejected")) throw new Error("a worker did not apply the change in time");
  }

  /** Every live worker's metrics (prom-client JSON), for the worker being scraped to sum. */
  async function gatherMetrics(): Promise<unknown[]> {
    const results = await Promise.allSettled(
      [...members.values()].filter((m) => m.ready).map((m) => m.rpc.call("metricsJson", null, METRICS_TIMEOUT_MS)),
    );
    return results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  }

  function onReady(member: Member, ready: WorkerReady): void {
    member.ready = true;
    logger.info({ worker: member.index, pid: member.worker.process.pid }, "worker listening");
    if (started) return;
    if (member.index === 1) {
      firstReady = ready;
      for (let i = 2; i <= opts.count; i++) start(i);
    }
    if ([...members.values()].every((m) => m.ready) && members.size === opts.count && firstReady) {
      started = true;
      if (firstReady.generatedAdminToken) {
        opts.print(`admin token: ${firstReady.generatedAdminToken}`);
        opts.print("  (shown once: store it now; it is kept only as a hash)");
      }
      logger.info({ workers: opts.count, pid: process.pid }, "keyward primary started");
      opts.print(`keyward listening on ${firstReady.url}`);
    }
  }

  function onExit(member: Member, code: number | null, signal: string | null): void {
    member.rpc.close("the worker exited");
    if (members.get(member.index) === member) members.delete(member.index);
    if (stopping) {
      if (code !== 0) exitCode = 1;
      if (members.size === 0) finish();
      return;
    }
    if (!started) {
      // A worker that cannot start says why on stderr itself (one line); stop with it.
      exitCode = 1;
      stop("a worker could not start");
      return;
    }
    // It may have committed a change it never relayed: the others drop what they cached.
    for (const m of members.values()) m.rpc.notify("reset", null);
    const next = policy.onExit(Date.now());
    if ("crashLoop" in next) {
      const { exits, withinMs } = next.crashLoop;
      process.stderr.write(
        `keyward: workers keep exiting (${exits} unexpected exits within ${withinMs / 1000} s); stopping\n`,
      );
      exitCode = 1;
      stop("crash loop");
      return;
    }
    logger.warn(
      { worker: member.index, code, signal, restart_in_ms: next.restartInMs },
      "worker exited unexpectedly; starting a new one",
    );
    setTimeout(() => {
      if (!stopping) start(member.index);
    }, next.restartInMs);
  }

  let killTimer: NodeJS.Timeout | undefined;
  function stop(reason: string): void {
    if (stopping) return;
    stopping = true;
    logger.info({ reason, workers: members.size }, "keyward primary stopping: draining every worker");
    if (members.size === 0) {
      finish();
      return;
    }
    for (const m of members.values()) m.worker.process.kill("SIGTERM");
    killTimer = setTimeout(() => {
      logger.error({ workers: members.size }, "workers did not drain in time; killing them");
      exitCode = 1;
      for (const m of members.values()) m.worker.process.kill("SIGKILL");
    }, config.shutdown_timeout_ms + DRAIN_MARGIN_MS);
    killTimer.unref();
  }

  function finish(): void {
    clearTimeout(killTimer);
    lock?.release();
    void bank.close().finally(() => opts.exit(exitCode));
  }

  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  start(1);
}
