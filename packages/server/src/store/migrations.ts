import type { Db } from "./db.js";
import { type Migration, runMigrations } from "./migrate.js";
import { MIGRATIONS_0001_0004 } from "./migrations/0001-0004.js";
import { MIGRATIONS_0005_0012 } from "./migrations/0005-0012.js";
import { MIGRATIONS_0013 } from "./migrations/0013.js";

export type { Migration } from "./migrate.js";

/**
 * Schema migrations, written once for both engines. `{{blob}}` is BLOB/BYTEA; everything else is
 * the common subset (BIGINT epoch-ms timestamps, INTEGER booleans, TEXT JSON).
 * Append only: a migration that has shipped is never edited; a new one goes at the end of the
 * newest file in migrations/ (a new file once that one nears ~400 lines). The runner is migrate.ts.
 */
export const MIGRATIONS: readonly Migration[] = [...MIGRATIONS_0001_0004, ...MIGRATIONS_0005_0012, ...MIGRATIONS_0013];

/**
 * Brings the schema up to date (or up to migration `through`) with the shipped list.
 * `migrations` replaces that list (tests of the runner itself).
 */
export async function migrate(
  db: Db,
  opts: { through?: number; migrations?: readonly Migration[] } = {},
): Promise<void> {
  await runMigrations(db, opts.migrations ?? MIGRATIONS, opts.through === undefined ? {} : { through: opts.through });
}
