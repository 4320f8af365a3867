import type { Db } from "../store/db.js";

/**
 * Access tokens revoked one by one (RFC 7009), by `jti`: kept in the store until the token would
 * have expired anyway, and in memory on every replica so the gateway checks without I/O.
 * (Tokens of a revoked or frozen key need no entry here: the gateway checks the key itself.)
 */
export function createTokenRevocations(deps: { db: Db; now: () => number }) {
  const revoked = new Map<string, number>();

  function remember(jti: string, expiresAt: number): void {
    if (expiresAt > deps.now()) revoked.set(jti, expiresAt);
  }

  return {
    has: (jti: string): boolean => revoked.has(jti),

    /** Loads every revocation still in force. */
    async load(): Promise<void> {
      const rows = await deps.db.query<{ jti: string; expires_at: number | string }>(
        "SELECT jti, expires_at FROM token_revocations WHERE expires_at > $1",
        [deps.now()],
      );
      for (const r of rows) remember(r.jti, Number(r.expires_at));
    },

    /** Re-reads one revocation (another replica made it). */
    async reload(jti: string): Promise<void> {
      const rows = await deps.db.query<{ expires_at: number | string }>(
        "SELECT expires_at FROM token_revocations WHERE jti = $1",
        [jti],
      );
      if (rows[0]) remember(jti, Number(rows[0].expires_at));
    },

    /** Inside the revoking transaction. Idempotent. */
    async insert(tx: Db, jti: string, expiresAt: number): Promise<void> {
      await tx.exec(
        `INSERT INTO token_revocations (jti, expires_at, revoked_at) VALUES ($1, $2, $3)
         ON CONFLICT (jti) DO NOTHING`,
        [jti, expiresAt, deps.now()],
      );
    },

    remember,

    /** Forgets what has expired, in memory and in the store. */
    async purge(): Promise<void> {
      const now = deps.now();
      for (const [jti, exp] of revoked) if (exp <= now) revoked.delete(jti);
      await deps.db.exec("DELETE FROM token_revocations WHERE expires_at <= $1", [now]);
    },
  };
}

export type TokenRevocations = ReturnType<typeof createTokenRevocations>;
