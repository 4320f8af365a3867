import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_STORE_OPTIONS } from "./db.js";
import { openSqlite } from "./sqlite.js";

// better-sqlite3 waits for a locked file synchronously, the whole process with it: the wait is
// bounded by busy_timeout_ms (`database.busy_timeout_ms`), then the write fails.
describe("SQLite busy timeout", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("a write waits busy_timeout_ms at most for a lock another process holds, then fails", async () => {
    dir = mkdtempSync(join(tmpdir(), "keyward-busy-"));
    const path = join(dir, "keyward.db");
    const db = openSqlite(path, { busyTimeoutMs: 150 });
    await db.exec("CREATE TABLE t (v INTEGER)");
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    try {
      const started = performance.now();
      await expect(db.exec("INSERT INTO t VALUES (1)")).rejects.toMatchObject({ code: "SQLITE_BUSY" });
      const waited = performance.now() - started;
      expect(waited).toBeGreaterThanOrEqual(100);
      expect(waited).toBeLessThan(1000);
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    await db.exec("INSERT INTO t VALUES (1)");
    await db.close();
  });

  it("defaults to DEFAULT_STORE_OPTIONS.busyTimeoutMs", async () => {
    const db = openSqlite(":memory:");
    expect(await db.query("PRAGMA busy_timeout")).toEqual([{ timeout: DEFAULT_STORE_OPTIONS.busyTimeoutMs }]);
    await db.close();
  });
});
