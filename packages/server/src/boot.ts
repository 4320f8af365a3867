import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Config } from "./config.js";
import { ConfigError } from "./config.js";
import { createKeyring, type Keyring } from "./crypto/keyring.js";
import { loadMasterKey } from "./crypto/master-key.js";
import { parsePreviousMasterKeys } from "./crypto/previous-master-keys.js";
import type { Db } from "./store/db.js";
import { isPostgresUrl, openStore, sqlitePath, storeOptions } from "./store/open-store.js";
import { lockSqlite } from "./store/sqlite-lock.js";

// What startKeyward does before any domain module exists (app.ts): the keyring, and the store.

/** The keyring from the master key (and retired ones); the raw keys are zeroed once it holds them. */
export function loadKeyring(config: Config, warn: (msg: string) => void): Keyring {
  let masterKey: Buffer;
  try {
    masterKey = loadMasterKey({
      fromEnv: config.master_key,
      dataDir: config.data_dir,
      requireExplicit: isPostgresUrl(config.database_url),
      warn,
    });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const retired = parsePreviousMasterKeys(config.master_key_previous, "KEYWARD_MASTER_KEY_PREVIOUS");
  const keyring = createKeyring({ active: masterKey, retired });
  masterKey.fill(0);
  for (const k of retired) k.fill(0);
  return keyring;
}

/**
 * Takes the SQLite file's lock (one process per file: see store/sqlite-lock.ts), creating its
 * folder first; undefined on PostgreSQL and for `:memory:`. `keyward serve --workers N` takes it
 * in the primary, once for all its workers.
 */
export function lockStoreFile(config: Config): { release(): void } | undefined {
  const sqliteFile = sqlitePath(config.database_url, config.data_dir);
  if (sqliteFile === undefined || sqliteFile === ":memory:") return undefined;
  mkdirSync(dirname(sqliteFile), { recursive: true, mode: 0o700 });
  try {
    return lockSqlite(sqliteFile);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

/**
 * The store, opened. A SQLite file is locked first (one process per file) unless `lockHeld` (a
 * worker: its primary holds the lock); `release` lets go of that lock and runs after `db.close()`
 * at shutdown.
 */
export async function openLockedStore(
  config: Config,
  opts: { lockHeld?: boolean } = {},
): Promise<{ db: Db; release(): void }> {
  const lock = opts.lockHeld ? undefined : lockStoreFile(config);
  try {
    const db = await openStore(config.database_url, config.data_dir, storeOptions(config.database));
    return { db, release: () => lock?.release() };
  } catch (err) {
    lock?.release();
    throw err;
  }
}
