import { parseArgs } from "node:util";
import { startKeyward } from "../app.js";
import { ConfigError, loadConfig } from "../config.js";

/**
 * `keyward serve [--port N] [--host H] [--data-dir D] [--config FILE]`. Prints one line with
 * `listening on http://HOST:PORT` when ready; SIGTERM/SIGINT drain in-flight requests, flush the
 * audit log and exit 0. A wrong setting exits 1 before listening, with one line naming it.
 */
const USAGE = `usage: keyward serve [--port N] [--host H] [--data-dir DIR] [--config FILE]

Starts the gateway. Settings also come from KEYWARD_* environment variables and the config file
(see docs/architecture.md); flags win over the environment, which wins over the file.
`;

export async function runServe(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return;
  }
  let config: ReturnType<typeof loadConfig>;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        "data-dir": { type: "string" },
        config: { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    });
    const { config: configFile, ...flags } = values;
    config = loadConfig({ flags, env: process.env, configFile });
  } catch (err) {
    const message = err instanceof ConfigError ? err.message : `invalid configuration: ${(err as Error).message}`;
    process.stderr.write(`keyward: ${message}\n`);
    process.exit(1);
  }

  let running: Awaited<ReturnType<typeof startKeyward>>;
  try {
    running = await startKeyward(config, { warn: (msg) => process.stderr.write(`keyward: warning: ${msg}\n`) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      err instanceof ConfigError
        ? err.message
        : e.code === "EADDRINUSE"
          ? `port ${config.port} on ${config.host} is already in use`
          : e.name === "StoreUnavailableError"
            ? "cannot reach the database (KEYWARD_DATABASE_URL)"
            : `cannot start: ${e.message}`;
    process.stderr.write(`keyward: ${why}\n`);
    process.exit(1);
  }

  // Handlers first: a supervisor may send SIGTERM the moment it reads the listening line.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`keyward: ${signal} received, draining\n`);
    running.close().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`keyward: shutdown error: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));

  if (running.generatedAdminToken) {
    process.stdout.write(`admin token: ${running.generatedAdminToken}\n`);
    process.stdout.write("  (shown once: store it now; it is kept only as a hash)\n");
  }
  process.stdout.write(`keyward listening on ${running.url}\n`);
}
