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

async function openRaw(databaseUrl: string | undefined, dataDir: string): Promise<Db> {
  if (!databaseUrl) return openSqlite(join(dataDir, "keyward.db"));
  if (databaseUrl.startsWith("sqlite:")) return openSqlite(databaseUrl.slice("sqlite:".length));
  return openPostgres(databaseUrl);
}

export function isPostgresUrl(url: string | undefined): boolean {
  return url !== undefined && /^postgres(ql)?:\/\//.test(url);
}
