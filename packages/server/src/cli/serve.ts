import cluster from "node:cluster";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { startKeyward } from "../app.js";
import { type Config, ConfigError, loadConfig } from "../config.js";
import { createMemoryPermitBank } from "../limits/memory-permit-bank.js";
import { createLogger, resolveLogFormat } from "../ops/logger.js";
import { sqlitePath } from "../store/open-store.js";
import { parseWorkers } from "../workers/workers-flag.js";
import { drainOnSignal } from "./drain-on-signal.js";
import { columns, HELP_WIDTH, wrap } from "./help.js";
import { runPrimary } from "./serve-primary.js";
import { runWorker, WORKER_INDEX_ENV } from "./serve-worker.js";

/**
 * `keyward serve [--port N] [--host H] [--data-dir D] [--config FILE] [--workers N]`. Prints one line with
 * `listening on http://HOST:PORT` when ready; SIGTERM/SIGINT drain in-flight requests, flush the
 * audit log and exit 0. A wrong setting exits 1 before listening, with one line naming it.
 *
 * Two kinds of output, kept apart: stdout holds only the lines a user or a script reads (the
 * listening line, the generated admin token), plain, as SPEC §1 fixes them; everything the server
 * says while it runs is a log line on stderr, in the configured format. The lines printed when
 * `serve` cannot start at all are the command's own error, plain, since no logger exists yet.
 *
 * `--workers N` (default: one per core) runs N processes sharing the port (cli/serve-primary.ts, workers/);
 * `--workers 1` is the single process, exactly as before workers existed.
 */
const USAGE = [
  "usage: keyward serve [--port N] [--host H] [--data-dir DIR] [--config FILE] [--workers N]",
  "",
  ...columns([
    ["--port N", "port to listen on (env KEYWARD_PORT, default 8080; 0 picks a free one)"],
    ["--host H", "address to listen on (env KEYWARD_HOST, default 127.0.0.1)"],
    ["--data-dir DIR", "the SQLite store and master key (env KEYWARD_DATA_DIR, default ./.keyward)"],
    ["--config FILE", "a YAML or JSON file of settings"],
    ["--workers N", "processes sharing the port (default: one per core; 1: a single process)"],
  ]),
  "",
  "logs (on stderr; stdout carries only the listening line and a generated admin token):",
  ...columns([
    ["KEYWARD_LOG_LEVEL", "fatal, error, warn, info (default), debug, trace or silent"],
    ["KEYWARD_LOG_FORMAT", "json, pretty, or auto (default: pretty on a terminal, JSON otherwise)"],
    ["KEYWARD_ACCESS_LOG", "1 or true: one info line per request (off by default)"],
  ]),
  "",
  ...wrap(
    "Starts the gateway. Settings also come from KEYWARD_* environment variables and the config file (see docs/architecture.md); flags win over the environment, which wins over the file.",
    HELP_WIDTH,
  ),
  "",
].join("\n");

export async function runServe(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return;
  }
  let config: Config;
  let workers: number;
  let workersGiven = false;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        "data-dir": { type: "string" },
        config: { type: "string" },
        workers: { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    });
    const { config: configFile, workers: workersFlag, ...flags } = values;
    const count = parseWorkers(workersFlag, availableParallelism());
    if (typeof count !== "number") return stopAtStart(count.error);
    workers = count;
    workersGiven = workersFlag !== undefined;
    config = loadConfig({ flags, env: process.env, configFile });
  } catch (err) {
    // One line: node's parseArgs explains some refusals over three (`--workers -1`).
    const why = err instanceof ConfigError ? err.message : `invalid configuration: ${(err as Error).message}`;
    return stopAtStart(why.split("\n")[0] as string);
  }

  const logger = createLogger({
    level: config.log_level,
    format: resolveLogFormat(config.log_format, process.stderr.isTTY === true),
  });
  const cannotStart = (err: unknown): never => stopAtStart(whyNotStarted(err, config));
  // Our own worker only: under another cluster primary (PM2's cluster mode) keyward is a single server.
  const index = process.env[WORKER_INDEX_ENV];
  if (cluster.isWorker && index !== undefined) {
    return runWorker(config, workers, logger.child({ worker: Number(index) }), cannotStart);
  }
  // Each process would get a :memory: store of its own: one process, unless --workers asked for more.
  if (workers > 1 && sqlitePath(config.database_url, config.data_dir) === ":memory:") {
    if (workersGiven) {
      return stopAtStart("--workers above 1 needs a database file or PostgreSQL, not sqlite::memory:");
    }
    workers = 1;
  }
  if (workers > 1) {
    try {
      runPrimary({
        ...{ config, logger, count: workers },
        bank: createMemoryPermitBank(),
        print: (line) => process.stdout.write(`${line}\n`),
        exit: (code) => logger.flush(() => process.exit(code)),
      });
    } catch (err) {
      return cannotStart(err);
    }
    return;
  }
  let running: Awaited<ReturnType<typeof startKeyward>>;
  try {
    running = await startKeyward(config, { logger, warn: (msg) => logger.warn(msg) });
  } catch (err) {
    return cannotStart(err);
  }

  // Handlers first: a supervisor may send SIGTERM the moment it reads the listening line.
  drainOnSignal(running, logger);

  if (running.generatedAdminToken) {
    process.stdout.write(`admin token: ${running.generatedAdminToken}\n`);
    process.stdout.write("  (shown once: store it now; it is kept only as a hash)\n");
  }
  process.stdout.write(`keyward listening on ${running.url}\n`);
}

/** The one line `serve` prints when it cannot start, then exit 1. */
function stopAtStart(message: string): never {
  process.stderr.write(`keyward: ${message}\n`);
  process.exit(1);
}

function whyNotStarted(err: unknown, config: Config): string {
  const e = err as NodeJS.ErrnoException;
  return err instanceof ConfigError
    ? err.message
    : e.code === "EADDRINUSE"
      ? `port ${config.port} on ${config.host} is already in use`
      : e.name === "StoreUnavailableError"
        ? "cannot reach the database (KEYWARD_DATABASE_URL)"
        : `cannot start: ${e.message}`;
}
