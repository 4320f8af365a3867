import type { Db } from "../store/db.js";
import type { Role } from "./admin-roles.js";

/** An admin token's row, without its hash (callers never need it back). */
export interface AdminTokenRow {
  id: string;
  name: string;
  role: Role;
  created_at: number;
  revoked_at: number | null;
}

/** A console session's row joined with its admin token, which must still be active. */
export interface SessionRow {
  admin_token_id: string;
  name: string;
  role: Role;
  csrf_hash: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
}

const TOKEN_COLUMNS = "id, name, role, created_at, revoked_at";

/** The SQL of admin tokens and console sessions; rules live in admin-auth.ts and admin-tokens-service.ts. */
export function createAdminStore(db: Db) {
  return {
    async activeByHash(hash: string): Promise<{ id: string; name: string; role: Role } | undefined> {
      const rows = await db.query<{ id: string; name: string; role: Role }>(
        "SELECT id, name, role FROM admin_tokens WHERE hash = $1 AND revoked_at IS NULL",
        [hash],
      );
      return rows[0];
    },

    async insert(tx: Db, row: { id: string; hash: string; name: string; role: Role; created_at: number }) {
      await tx.exec("INSERT INTO admin_tokens (id, hash, name, role, created_at) VALUES ($1, $2, $3, $4, $5)", [
        row.id,
        row.hash,
        row.name,
        row.role,
        row.created_at,
      ]);
    },

    async list(after: string | undefined, limit: number): Promise<AdminTokenRow[]> {
      return db.query<AdminTokenRow>(`SELECT ${TOKEN_COLUMNS} FROM admin_tokens WHERE id > $1 ORDER BY id LIMIT $2`, [
        after ?? "",
        limit + 1,
      ]);
    },

    async get(tx: Db, id: string): Promise<AdminTokenRow | undefined> {
      return (await tx.query<AdminTokenRow>(`SELECT ${TOKEN_COLUMNS} FROM admin_tokens WHERE id = $1`, [id]))[0];
    },

    /**
     * Active owners, locked on PostgreSQL until the transaction ends: two revocations of the last
     * two owners at once must not both see the other still active (SQLite runs one writer at a time).
     */
    async activeOwnersLocked(tx: Db): Promise<string[]> {
      const lock = tx.engine === "postgres" ? " FOR UPDATE" : "";
      const rows = await tx.query<{ id: string }>(
        `SELECT id FROM admin_tokens WHERE role = 'owner' AND revoked_at IS NULL ORDER BY id${lock}`,
      );
      return rows.map((r) => r.id);
    },

    async revoke(tx: Db, id: string, now: number): Promise<void> {
      await tx.exec("UPDATE admin_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", [now, id]);
      await tx.exec("DELETE FROM admin_sessions WHERE admin_token_id = $1", [id]);
    },

    async insertSession(row: {
      hash: string;
      admin_token_id: string;
      csrf_hash: string;
      created_at: number;
      expires_at: number;
    }): Promise<void> {
      await db.exec(
        "INSERT INTO admin_sessions (hash, admin_token_id, csrf_hash, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)",
        [row.hash, row.admin_token_id, row.csrf_hash, row.created_at, row.expires_at],
      );
    },

    async session(hash: string): Promise<SessionRow | undefined> {
      const rows = await db.query<SessionRow>(
        `SELECT s.admin_token_id, t.name, t.role, s.csrf_hash, s.created_at, s.last_seen_at, s.expires_at
         FROM admin_sessions s JOIN admin_tokens t ON t.id = s.admin_token_id
         WHERE s.hash = $1 AND t.revoked_at IS NULL`,
        [hash],
      );
      return rows[0];
    },

    async setSessionCsrf(hash: string, csrfHash: string): Promise<void> {
      await db.exec("UPDATE admin_sessions SET csrf_hash = $1 WHERE hash = $2", [csrfHash, hash]);
    },

    async touchSession(hash: string, now: number): Promise<void> {
      await db.exec("UPDATE admin_sessions SET last_seen_at = $1 WHERE hash = $2", [now, hash]);
    },

    async deleteSession(hash: string): Promise<void> {
      await db.exec("DELETE FROM admin_sessions WHERE hash = $1", [hash]);
    },

    /** Sessions past either expiry, so the table does not grow with abandoned sign-ins. */
    async deleteExpiredSessions(now: number, idleMs: number): Promise<void> {
      await db.exec("DELETE FROM admin_sessions WHERE expires_at <= $1 OR last_seen_at <= $2", [now, now - idleMs]);
    },
  };
}

export type AdminStore = ReturnType<typeof createAdminStore>;
