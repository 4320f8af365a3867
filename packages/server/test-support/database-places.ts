import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Db } from "../src/store/db.js";
import { openPostgres } from "../src/store/postgres.js";
import { openSqlite } from "../src/store/sqlite.js";
import type { TestServer } from "./server.js";
import { startTestServerAt } from "./server-at.js";

/**
 * Keyward on a database a test also reaches with raw SQL, as an insider would: edit while Keyward
 * is stopped, start it again (a fresh process has nothing cached, so it serves what the rows say).
 * Also the way to build a database at an older migration and start this version on it.
 */
const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;

/** A database Keyward can be stopped and started on, with SQL access between starts. */
export interface Place {
  /** The database, for SQL an insider runs (open it while Keyward is stopped). */
  sql(fn: (db: Db) => Promise<void>): Promise<void>;
  start(env?: Record<string, string>): Promise<TestServer>;
  cleanup(): Promise<void>;
}

function sqlitePlace(): Place {
  const dir = mkdtempSync(join(tmpdir(), "keyward-integrity-"));
  return {
    async sql(fn) {
      const db = openSqlite(join(dir, "keyward.db"));
      try {
        await fn(db);
      } finally {
        await db.close();
      }
    },
    start: (env = {}) => startTestServerAt(dir, env),
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresPlace(): Place {
  const dir = mkdtempSync(join(tmpdir(), "keyward-integrity-pg-"));
  const schema = `kwi_${randomBytes(5).toString("hex")}`;
  const url = `${pgUrl}${(pgUrl as string).includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const sql: Place["sql"] = async (fn) => {
    const db = await openPostgres(pgUrl as string, { schema, max: 2 });
    try {
      await fn(db);
    } finally {
      await db.close();
    }
  };
  return {
    sql,
    async start(env = {}) {
      await sql(async () => {}); // opening it creates the schema the server's search_path names
      return startTestServerAt(dir, { KEYWARD_DATABASE_URL: url, ...env });
    },
    async cleanup() {
      await sql((db) => db.exec(`DROP SCHEMA ${schema} CASCADE`).then(() => undefined)).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** For `describe.each`: SQLite always, PostgreSQL when KEYWARD_TEST_DATABASE_URL is set. */
export function placeEngines(suite: string) {
  if (!pgUrl) console.warn(`[${suite}] KEYWARD_TEST_DATABASE_URL is not set: PostgreSQL skipped`);
  return [
    { name: "sqlite", skip: undefined, place: sqlitePlace },
    { name: "postgres", skip: pgUrl ? undefined : "KEYWARD_TEST_DATABASE_URL is not set", place: postgresPlace },
  ];
}
