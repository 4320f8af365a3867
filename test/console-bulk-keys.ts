import { randomBytes } from "node:crypto";
import { join } from "node:path";
import Database from "better-sqlite3";

/**
 * Puts `count` keys of `owner` straight into a running test server's SQLite file (WAL: the server
 * sees them at its next read), in one transaction: the admin API would spend most of a test's time
 * on 10,000 creations, and the console only needs them listed. The rows are shaped like the
 * server's (ids `key_` + 16 characters, hashes with the keyed-hash prefix) but their hashes are
 * random: these keys are never presented, so no secret exists for them. Like bench/lib/bulk-keys.mjs,
 * which fills a stopped server's store for the benchmarks.
 */
export function insertListedKeys(dataDir: string, owner: string, count: number): void {
  const db = new Database(join(dataDir, "keyward.db"));
  try {
    db.pragma("busy_timeout = 10000");
    const insert = db.prepare(
      `INSERT INTO api_keys (id, hash, prefix, owner, name, scopes, status, expires_at, rate_limit, quota, ip_allow,
         rotated_to, lineage, created_at, updated_at, revoked_at, last_used_at)
       VALUES (?, ?, 'kwk_bulk', ?, NULL, '[]', 'active', NULL, NULL, NULL, NULL, NULL, ?, ?, ?, NULL, NULL)`,
    );
    const now = Date.now();
    db.transaction(() => {
      for (let i = 0; i < count; i++) {
        const id = `key_bulk${i.toString().padStart(12, "0")}`;
        insert.run(id, `h1:${randomBytes(32).toString("hex")}`, owner, id, now, now);
      }
    })();
  } finally {
    db.close();
  }
}
