import type { Db } from "../store/db.js";

export type ClientAuthMethod = "none" | "client_secret_basic" | "client_secret_post";

export interface OAuthClientRow {
  id: string;
  /** The keyed hash of a confidential client's secret; null for a public client. */
  secret_hash: string | null;
  name: string | null;
  redirect_uris: string[];
  auth_method: ClientAuthMethod;
  grant_types: string[];
  created_at: number;
  last_used_at: number;
}

const COLS = "id, secret_hash, name, redirect_uris, auth_method, grant_types, created_at, last_used_at";

function toRow(r: Record<string, unknown>): OAuthClientRow {
  return {
    id: String(r.id),
    secret_hash: r.secret_hash === null ? null : String(r.secret_hash),
    name: r.name === null ? null : String(r.name),
    redirect_uris: JSON.parse(String(r.redirect_uris)) as string[],
    auth_method: String(r.auth_method) as ClientAuthMethod,
    grant_types: JSON.parse(String(r.grant_types)) as string[],
    created_at: Number(r.created_at),
    last_used_at: Number(r.last_used_at),
  };
}

/** SQL for registered OAuth clients (RFC 7591). */
export function createOAuthClientsStore(db: Db) {
  return {
    /** Inserts unless `max` rows exist already; false when full. One statement, so two inserts cannot both pass the cap. */
    async insertWithin(row: OAuthClientRow, max: number): Promise<boolean> {
      return db.transaction(async (tx) => {
        if (tx.engine === "postgres") await tx.exec("LOCK TABLE oauth_clients IN SHARE ROW EXCLUSIVE MODE");
        const [count] = await tx.query<{ n: number | string }>("SELECT COUNT(*) AS n FROM oauth_clients");
        if (Number(count?.n ?? 0) >= max) return false;
        await tx.exec(`INSERT INTO oauth_clients (${COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
          row.id,
          row.secret_hash,
          row.name,
          JSON.stringify(row.redirect_uris),
          row.auth_method,
          JSON.stringify(row.grant_types),
          row.created_at,
          row.last_used_at,
        ]);
        return true;
      });
    },

    async get(id: string): Promise<OAuthClientRow | undefined> {
      const rows = await db.query<Record<string, unknown>>(`SELECT ${COLS} FROM oauth_clients WHERE id = $1`, [id]);
      return rows[0] ? toRow(rows[0]) : undefined;
    },

    /** Keyset page by id: up to `limit` + 1 rows after `after` (http/paging.ts trims). */
    async list(after: string | undefined, limit: number): Promise<OAuthClientRow[]> {
      const rows = await db.query<Record<string, unknown>>(
        `SELECT ${COLS} FROM oauth_clients WHERE id > $1 ORDER BY id LIMIT $2`,
        [after ?? "", limit + 1],
      );
      return rows.map(toRow);
    },

    async count(): Promise<number> {
      const [row] = await db.query<{ n: number | string }>("SELECT COUNT(*) AS n FROM oauth_clients");
      return Number(row?.n ?? 0);
    },

    async touch(id: string, now: number): Promise<void> {
      await db.exec("UPDATE oauth_clients SET last_used_at = $1 WHERE id = $2", [now, id]);
    },

    async remove(tx: Db, id: string): Promise<boolean> {
      return (await tx.exec("DELETE FROM oauth_clients WHERE id = $1", [id])) === 1;
    },
  };
}

export type OAuthClientsStore = ReturnType<typeof createOAuthClientsStore>;
