import type { Db } from "../store/db.js";

export interface RefreshTokenRow {
  id: string;
  hash: string;
  family: string;
  key_id: string;
  subject: string;
  scope: string;
  audience: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  revoked_at: number | null;
}

const COLS = "id, hash, family, key_id, subject, scope, audience, created_at, expires_at, used_at, revoked_at";

function toRow(r: Record<string, unknown>): RefreshTokenRow {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    ...(r as unknown as RefreshTokenRow),
    created_at: Number(r.created_at),
    expires_at: Number(r.expires_at),
    used_at: num(r.used_at),
    revoked_at: num(r.revoked_at),
  };
}

/** SQL for refresh tokens: stored by hash only; a family is every token rotated from one grant. */
export function createRefreshTokensStore(db: Db) {
  return {
    async insert(tx: Db, row: RefreshTokenRow): Promise<void> {
      await tx.exec(`INSERT INTO refresh_tokens (${COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, [
        row.id,
        row.hash,
        row.family,
        row.key_id,
        row.subject,
        row.scope,
        row.audience,
        row.created_at,
        row.expires_at,
        row.used_at,
        row.revoked_at,
      ]);
    },

    async getByHash(hash: string, tx: Db = db): Promise<RefreshTokenRow | undefined> {
      const rows = await tx.query<Record<string, unknown>>(`SELECT ${COLS} FROM refresh_tokens WHERE hash = $1`, [
        hash,
      ]);
      return rows[0] ? toRow(rows[0]) : undefined;
    },

    /** Marks a live token used; false when it was already used or revoked (the caller lost a race or replayed it). */
    async markUsed(tx: Db, id: string, now: number): Promise<boolean> {
      const n = await tx.exec(
        "UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
        [now, id],
      );
      return n === 1;
    },

    async revokeFamily(tx: Db, family: string, now: number): Promise<number> {
      return tx.exec("UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL", [
        now,
        family,
      ]);
    },

    async revokeForKey(tx: Db, keyId: string, now: number): Promise<number> {
      return tx.exec("UPDATE refresh_tokens SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL", [
        now,
        keyId,
      ]);
    },

    /**
     * The key's live families beyond `cap`, least recently used first (a family has at most one
     * live token: rotation marks the old one used). Inside the transaction that just added one.
     */
    async familiesOverCap(tx: Db, keyId: string, now: number, cap: number): Promise<string[]> {
      const live = "key_id = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2";
      const [count] = await tx.query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM refresh_tokens WHERE ${live}`, [
        keyId,
        now,
      ]);
      const over = Number(count?.n ?? 0) - cap;
      if (over <= 0) return [];
      const rows = await tx.query<{ family: string }>(
        `SELECT family FROM refresh_tokens WHERE ${live} ORDER BY created_at, id LIMIT $3`,
        [keyId, now, over],
      );
      return rows.map((r) => r.family);
    },

    /** Drops tokens past their expiry (they can never be used, and reuse detection no longer matters). */
    async purgeExpired(now: number): Promise<number> {
      return db.exec("DELETE FROM refresh_tokens WHERE expires_at <= $1", [now]);
    },
  };
}

export type RefreshTokensStore = ReturnType<typeof createRefreshTokensStore>;
