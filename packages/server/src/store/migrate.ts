import { MIGRATIONS_LOCK } from "./advisory-locks.js";
import type { Db } from "./db.js";
import { isSqliteDb } from "./sqlite.js";

/**
 * The migration runner. The shipped list is in migrations.ts, whose `migrate()` hands it to
 * `runMigrations`; this file knows nothing of any one migration.
 */
export interface Migration {
  /** The schema version it brings: recorded in keyward_migrations, never reused. */
  id: number;
  name: string;
  /** Any number of statements, run whole (function bodies and string literals may hold `;`). */
  sql: string;
}

function forEngine(sql: string, engine: Db["engine"]): string {
  return sql.replaceAll("{{blob}}", engine === "sqlite" ? "BLOB" : "BYTEA");
}

/**
 * Applies `migrations` not yet recorded (or those up to `through`). Safe to run from many replicas
 * at once (PostgreSQL advisory lock). Each migration runs whole, in a transaction of its own that
 * also records its id, so one that fails leaves neither its changes nor its id behind, and those
 * before it stay applied.
 */
export async function runMigrations(
  db: Db,
  migrations: readonly Migration[],
  opts: { through?: number } = {},
): Promise<void> {
  const pending = migrations.filter(
    // `through` stops at an older schema: upgrade tests build the database a previous version made.
    (m) => opts.through === undefined || m.id <= opts.through,
  );
  for (const m of pending) {
    await db.transaction(async (tx) => {
      if (tx.engine === "postgres") await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATIONS_LOCK]);
      await tx.exec(
        "CREATE TABLE IF NOT EXISTS keyward_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
      );
      // Applied before, or by another replica while this one waited for the lock.
      if ((await tx.query("SELECT id FROM keyward_migrations WHERE id = $1", [m.id])).length > 0) return;
      await runWhole(tx, forEngine(m.sql, tx.engine));
      await tx.exec("INSERT INTO keyward_migrations (id, name, applied_at) VALUES ($1, $2, $3)", [
        m.id,
        m.name,
        Date.now(),
      ]);
    });
  }
}

/**
 * One migration's SQL as one string, never split on `;` (which would cut a function body or a
 * string literal apart). better-sqlite3's `exec` runs every statement of a string; node-postgres
 * sends a query without parameters in the simple protocol, which runs them all too. Both join the
 * open transaction.
 */
async function runWhole(tx: Db, sql: string): Promise<void> {
  if (isSqliteDb(tx)) tx.execScript(sql);
  else await tx.exec(sql);
}
