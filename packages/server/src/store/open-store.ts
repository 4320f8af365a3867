import { join } from "node:path";
import type { Db, StoreOptions } from "./db.js";
import { migrate } from "./migrations.js";
import { openPostgres } from "./postgres.js";
import { openSqlite } from "./sqlite.js";

/**
 * Opens the store named by a `sqlite:PATH` or `postgres://…` URL and migrates it. `opts` bounds
 * every call (pool size and timeouts; defaults in db.ts). On PostgreSQL migrations run first, on
 * a connection of their own without statement or lock timeouts: they wait for a replica that is
 * migrating and must not be cut halfway; the pool the server uses is opened after.
 */
export async function openStore(
  databaseUrl: string | undefined,
  dataDir: string,
  opts: Partial<StoreOptions> = {},
): Promise<Db> {
  const path = sqlitePath(databaseUrl, dataDir);
  if (path === undefined) {
    const url = databaseUrl as string;
    await migrated(await openPostgres(url, { ...opts, poolSize: 1, unbounded: true }));
    return openPostgres(url, opts);
  }
  const db = openSqlite(path, opts);
  await migrated(db, false);
  return db;
}

async function migrated(db: Db, closeAfter = true): Promise<void> {
  try {
    await migrate(db);
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
  if (closeAfter) await db.close();
}

/** The SQLite file a configuration uses, or undefined for PostgreSQL. */
export function sqlitePath(databaseUrl: string | undefined, dataDir: string): string | undefined {
  if (!databaseUrl) return join(dataDir, "keyward.db");
  if (databaseUrl.startsWith("sqlite:")) return databaseUrl.slice("sqlite:".length);
  return undefined;
}

export function isPostgresUrl(url: string | undefined): boolean {
  return url !== undefined && /^postgres(ql)?:\/\//.test(url);
}

/** The config file's `database:` section as store options. */
export function storeOptions(c: {
  pool_size: number;
  connect_timeout_ms: number;
  statement_timeout_ms: number;
  lock_timeout_ms: number;
  idle_in_transaction_timeout_ms: number;
  query_timeout_ms?: number | undefined;
  transaction_timeout_ms: number;
  busy_timeout_ms: number;
}): Partial<StoreOptions> {
  return {
    poolSize: c.pool_size,
    connectTimeoutMs: c.connect_timeout_ms,
    statementTimeoutMs: c.statement_timeout_ms,
    lockTimeoutMs: c.lock_timeout_ms,
    idleInTransactionTimeoutMs: c.idle_in_transaction_timeout_ms,
    ...(c.query_timeout_ms !== undefined ? { queryTimeoutMs: c.query_timeout_ms } : {}),
    transactionTimeoutMs: c.transaction_timeout_ms,
    busyTimeoutMs: c.busy_timeout_ms,
  };
}
