import { parseArgs } from "node:util";
import { resetAdminTokens } from "../admin/admin-auth.js";
import { createAuditLog } from "../audit/audit-log.js";
import { systemClock } from "../clock.js";
import { ConfigError, loadConfig } from "../config.js";
import { silentLogger } from "../ops/logger.js";
import { openStore } from "../store/open-store.js";
import type { CliIo } from "./main.js";

const USAGE = `usage: keyward admin-token reset [--data-dir DIR] [--config FILE]

Replaces every admin token with a new one, printed once. Works on the store directly (the same
KEYWARD_DATA_DIR / KEYWARD_DATABASE_URL as keyward serve), so it needs no admin token: use it when
the token is lost or leaked. Running servers accept only the new token from their next request on.
`;

/** `keyward admin-token reset`: the way back in when the admin token is lost. */
export async function runAdminToken(argv: string[], io: CliIo): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h") || argv.length === 0) {
    io.stdout.write(USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  let values: { "data-dir"?: string | undefined; config?: string | undefined };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { "data-dir": { type: "string" }, config: { type: "string" } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    io.stderr.write(`error: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (positionals.length !== 1 || positionals[0] !== "reset") {
    io.stderr.write(`error: unknown admin-token command\n${USAGE}`);
    return 2;
  }
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig({ env: io.env, flags: { "data-dir": values["data-dir"] }, configFile: values.config });
  } catch (err) {
    io.stderr.write(`keyward: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`);
    return 2;
  }
  const db = await openStore(config.database_url, config.data_dir);
  const audit = createAuditLog({ db, clock: systemClock, logger: silentLogger() });
  try {
    const token = await resetAdminTokens(db, audit, Date.now());
    io.stdout.write(`admin token: ${token}\n  (shown once: every earlier admin token no longer works)\n`);
    return 0;
  } finally {
    await audit.close();
    await db.close();
  }
}
