import type { Db } from "../store/db.js";

export interface KeyRow {
  id: string;
  hash: string;
  prefix: string;
  owner: string;
  name: string | null;
  scopes: string; // JSON array
  status: "active" | "revoked" | "frozen";
  expires_at: number | null;
  rate_limit: string | null; // JSON {limit, window_s}
  quota: string | null; // JSON {limit, period}
  ip_allow: string | null; // JSON array of CIDRs
  rotated_to: string | null;
  lineage: string;
  created_at: number;
  updated_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
  /** 1: a canary key (SPEC §10), never usable; any use is a critical alert. */
  canary: number;
}

const COLS =
  "id, hash, prefix, owner, name, scopes, status, expires_at, rate_limit, quota, ip_allow, rotated_to, lineage, created_at, updated_at, revoked_at, last_used_at, canary";

export type KeyChanges = Partial<
  Pick<
    KeyRow,
    "name" | "scopes" | "status" | "expires_at" | "rate_limit" | "quota" | "ip_allow" | "rotated_to" | "revoked_at"
  >
>;

export function createKeysStore(db: Db) {
  const forUpdate = db.engine === "postgres" ? " FOR UPDATE" : "";
  return {
    async insert(tx: Db, k: KeyRow): Promise<void> {
      await tx.exec(
        `INSERT INTO api_keys (${COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)`,
        [
          k.id,
          k.hash,
          k.prefix,
          k.owner,
          k.name,
          k.scopes,
          k.status,
          k.expires_at,
          k.rate_limit,
          k.quota,
          k.ip_allow,
          k.rotated_to,
          k.lineage,
          k.created_at,
          k.updated_at,
          k.revoked_at,
          k.last_used_at,
          k.canary,
        ],
      );
    },
    async get(id: string): Promise<KeyRow | undefined> {
      return (await db.query<KeyRow>(`SELECT ${COLS} FROM api_keys WHERE id = $1`, [id]))[0];
    },
    /** Reads a row and, on PostgreSQL, locks it until the transaction ends (SQLite transactions are serial). */
    async getForUpdate(tx: Db, id: string): Promise<KeyRow | undefined> {
      return (await tx.query<KeyRow>(`SELECT ${COLS} FROM api_keys WHERE id = $1${forUpdate}`, [id]))[0];
    },
    async getByHash(hash: string): Promise<KeyRow | undefined> {
      return (await db.query<KeyRow>(`SELECT ${COLS} FROM api_keys WHERE hash = $1`, [hash]))[0];
    },
    async list(owner: string | undefined, after: string | undefined, limit: number): Promise<KeyRow[]> {
      if (owner !== undefined) {
        return db.query<KeyRow>(`SELECT ${COLS} FROM api_keys WHERE owner = $1 AND id > $2 ORDER BY id LIMIT $3`, [
          owner,
          after ?? "",
          limit + 1,
        ]);
      }
      return db.query<KeyRow>(`SELECT ${COLS} FROM api_keys WHERE id > $1 ORDER BY id LIMIT $2`, [
        after ?? "",
        limit + 1,
      ]);
    },
    /** Revokes every live key of `owner` (its owner is being deleted); returns their ids. */
    async revokeOwnedBy(tx: Db, owner: string, now: number): Promise<string[]> {
      const rows = await tx.query<{ id: string }>(
        "UPDATE api_keys SET status = 'revoked', revoked_at = $2, updated_at = $2 WHERE owner = $1 AND status <> 'revoked' RETURNING id",
        [owner, now],
      );
      return rows.map((r) => r.id);
    },
    async update(tx: Db, id: string, changes: KeyChanges, now: number): Promise<KeyRow | undefined> {
      const sets: string[] = [];
      const params: (string | number | null)[] = [id];
      for (const [col, value] of Object.entries(changes)) {
        params.push(value as string | number | null);
        sets.push(`${col} = $${params.length}`);
      }
      params.push(now);
      sets.push(`updated_at = $${params.length}`);
      return (
        await tx.query<KeyRow>(`UPDATE api_keys SET ${sets.join(", ")} WHERE id = $1 RETURNING ${COLS}`, params)
      )[0];
    },
  };
}

export type KeysStore = ReturnType<typeof createKeysStore>;
