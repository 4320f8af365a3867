import { join } from "node:path";
import type { Db } from "./db.js";
import { migrate } from "./migrations.js";
import { openPostgres } from "./postgres.js";
import { openSqlite } from "./sqlite.js";

/** Opens the store named by a `sqlite:PATH` or `postgres://…` URL and migrates it. */
export async function openStore(databaseUrl: string | undefined, dataDir: string): Promise<Db> {
  const db = await openRaw(databaseUrl, dataDir);
  try {
    await migrate(db);
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
  return db;
}

/** The SQLite file a configuration uses, or undefined for PostgreSQL. */
export function sqlitePath(databaseUrl: string | undefined, dataDir: string): string | undefined {
  if (!databaseUrl) return join(dataDir, "keyward.db");
  if (databaseUrl.startsWith("sqlite:")) return databaseUrl.slice("sqlite:".length);
  return undefined;
}

async function openRaw(databaseUrl: string | undefined, dataDir: string): Promise<Db> {
  const path = sqlitePath(databaseUrl, dataDir);
  return path !== undefined ? openSqlite(path) : openPostgres(databaseUrl as string);
}

export function isPostgresUrl(url: string | undefined): boolean {
  return url !== undefined && /^postgres(ql)?:\/\//.test(url);
}
