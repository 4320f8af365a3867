import { parseArgs } from "node:util";
import { resetAdminTokens } from "../admin/admin-auth.js";
import { createAuditChainState } from "../audit/audit-checkpoints.js";
import { createAuditLog } from "../audit/audit-log.js";
import { systemClock } from "../clock.js";
import { ConfigError, loadConfig } from "../config.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { openIntegrity } from "../crypto/integrity-root.js";
import { createKeyring } from "../crypto/keyring.js";
import { markLegacyHashes } from "../crypto/legacy-hashes.js";
import { loadMasterKey } from "../crypto/master-key.js";
import { parsePreviousMasterKeys } from "../crypto/previous-master-keys.js";
import { silentLogger } from "../ops/logger.js";
import { isPostgresUrl, openStore } from "../store/open-store.js";
import { columns, HELP_WIDTH, wrap } from "./help.js";
import type { CliIo } from "./main.js";

const USAGE = [
  "usage: keyward admin-token reset [--data-dir DIR] [--config FILE]",
  "",
  ...columns([
    ["--data-dir DIR", "the data dir keyward serve uses (env KEYWARD_DATA_DIR)"],
    ["--config FILE", "the config file keyward serve uses"],
  ]),
  "",
  ...wrap(
    "Replaces every admin token with a new one, printed once. Works on the store directly (the same KEYWARD_DATA_DIR / KEYWARD_DATABASE_URL as keyward serve), so it needs no admin token: use it when the token is lost or leaked. Running servers accept only the new token from their next request on.",
    HELP_WIDTH,
  ),
  "",
].join("\n");

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
  // The master key too: the reset's audit record links into the keyed chain (crypto/integrity-root.ts).
  let keyring: ReturnType<typeof createKeyring>;
  try {
    const active = loadMasterKey({
      fromEnv: config.master_key,
      dataDir: config.data_dir,
      requireExplicit: isPostgresUrl(config.database_url),
      warn: (msg) => io.stderr.write(`keyward: ${msg}\n`),
    });
    const retired = parsePreviousMasterKeys(config.master_key_previous, "KEYWARD_MASTER_KEY_PREVIOUS");
    keyring = createKeyring({ active, retired });
    active.fill(0);
    for (const k of retired) k.fill(0);
  } catch (err) {
    io.stderr.write(`keyward: ${(err as Error).message}\n`);
    return 2;
  }
  const db = await openStore(config.database_url, config.data_dir);
  let audit: ReturnType<typeof createAuditLog>;
  let integrityKeys: IntegrityKeys;
  try {
    const integrity = await openIntegrity({ db, keyring, clock: systemClock });
    await markLegacyHashes({ db, keys: integrity.keys });
    integrityKeys = integrity.keys;
    const chain = createAuditChainState({ keyedFrom: integrity.auditKeyedFrom, keys: integrity.keys });
    audit = createAuditLog({ db, clock: systemClock, logger: silentLogger(), chain });
  } catch (err) {
    await db.close();
    throw err;
  }
  try {
    const token = await resetAdminTokens(db, audit, Date.now(), integrityKeys);
    io.stdout.write(`admin token: ${token}\n  (shown once: every earlier admin token no longer works)\n`);
    return 0;
  } finally {
    await audit.close();
    await db.close();
  }
}
