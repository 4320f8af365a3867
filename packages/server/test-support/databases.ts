import { randomBytes } from "node:crypto";
import type { Db } from "../src/store/db.js";
import { migrate } from "../src/store/migrations.js";
import { openPostgres } from "../src/store/postgres.js";
import { openSqlite } from "../src/store/sqlite.js";

export interface TestEngine {
  name: "sqlite" | "postgres";
  /** Why the engine is skipped on this machine, or undefined when it runs. */
  skip: string | undefined;
  /** A fresh, migrated, empty database; `through` stops at an older schema (upgrade tests). */
  open(through?: number): Promise<Db>;
}

const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;

if (!pgUrl) {
  console.warn("[keyward tests] KEYWARD_TEST_DATABASE_URL is not set: PostgreSQL tests are skipped");
}

/** Opens a PostgreSQL database in a schema of its own, dropped on close. */
export async function openTestPostgres(through?: number): Promise<Db> {
  if (!pgUrl) throw new Error("KEYWARD_TEST_DATABASE_URL is not set");
  const schema = `kwt_${randomBytes(6).toString("hex")}`;
  const db = await openPostgres(pgUrl, { schema, max: 4 });
  await migrate(db, through !== undefined ? { through } : {});
  const close = db.close.bind(db);
  return Object.assign(db, {
    close: async () => {
      await db.exec(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
      await close();
    },
  });
}

export async function openTestSqlite(path = ":memory:", through?: number): Promise<Db> {
  const db = openSqlite(path);
  await migrate(db, through !== undefined ? { through } : {});
  return db;
}

export const testEngines: TestEngine[] = [
  { name: "sqlite", skip: undefined, open: (through) => openTestSqlite(":memory:", through) },
  {
    name: "postgres",
    skip: pgUrl ? undefined : "KEYWARD_TEST_DATABASE_URL is not set",
    open: (through) => openTestPostgres(through),
  },
];
