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
 * The store, opened. A SQLite file is locked first (one process per file); `release` lets go of
 * that lock and runs after `db.close()` at shutdown.
 */
export async function openLockedStore(config: Config): Promise<{ db: Db; release(): void }> {
  const sqliteFile = sqlitePath(config.database_url, config.data_dir);
  let lock: { release(): void } | undefined;
  if (sqliteFile !== undefined && sqliteFile !== ":memory:") {
    mkdirSync(dirname(sqliteFile), { recursive: true, mode: 0o700 });
    try {
      lock = lockSqlite(sqliteFile);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  }
  try {
    const db = await openStore(config.database_url, config.data_dir, storeOptions(config.database));
    return { db, release: () => lock?.release() };
  } catch (err) {
    lock?.release();
    throw err;
  }
}
