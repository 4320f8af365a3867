import type { Db } from "../store/db.js";

/** A row of `signing_keys`. `private_enc` is a keyring envelope, never a bare key. */
export interface SigningKeyRow {
  kid: string;
  alg: string;
  public_jwk: string;
  private_enc: Buffer;
  created_at: number;
  retired_at: number | null;
  remove_after: number | null;
}

export type NewSigningKey = Pick<SigningKeyRow, "kid" | "alg" | "public_jwk" | "private_enc" | "created_at">;

export interface SigningKeysStore {
  /** Deletes keys whose retirement grace has ended, then lists the rest, oldest first. */
  listLive(now: number): Promise<SigningKeyRow[]>;
  /** Inserts `key` unless an active key already exists; true when inserted. */
  insertFirst(key: NewSigningKey): Promise<boolean>;
  /** Inserts `key` and retires every other active key, to be removed at `removeAfter`. */
  /** In `outer` when given (a caller's transaction), else in a transaction of its own. */
  insertAndRetireOthers(key: NewSigningKey, removeAfter: number, outer?: Db): Promise<void>;
}

export function createSigningKeysStore(db: Db): SigningKeysStore {
  return {
    async listLive(now) {
      await db.exec("DELETE FROM signing_keys WHERE remove_after IS NOT NULL AND remove_after <= $1", [now]);
      return db.query<SigningKeyRow>(
        `SELECT kid, alg, public_jwk, private_enc, created_at, retired_at, remove_after FROM signing_keys
         WHERE remove_after IS NULL OR remove_after > $1 ORDER BY created_at, kid`,
        [now],
      );
    },

    insertFirst: (key) =>
      db.transaction(async (tx) => {
        await lockKeys(tx);
        const active = await tx.query("SELECT kid FROM signing_keys WHERE retired_at IS NULL LIMIT 1");
        if (active.length > 0) return false;
        await insert(tx, key);
        return true;
      }),

    insertAndRetireOthers: (key, removeAfter, outer) => {
      const run = async (tx: Db) => {
        await lockKeys(tx);
        await insert(tx, key);
        await tx.exec(
          "UPDATE signing_keys SET retired_at = $1, remove_after = $2 WHERE retired_at IS NULL AND kid <> $3",
          [key.created_at, removeAfter, key.kid],
        );
      };
      return outer ? run(outer) : db.transaction(run);
    },
  };
}

/**
 * Serializes key creation across replicas, so two servers starting together on an empty store
 * create one key, not two. SQLite's transactions already hold the database write lock (BEGIN
 * IMMEDIATE); PostgreSQL's default isolation would let both inserts through, so we take a table
 * lock that conflicts with itself but not with readers (verification keeps reading JWKS).
 */
async function lockKeys(tx: Db): Promise<void> {
  if (tx.engine === "postgres") await tx.exec("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE");
}

async function insert(tx: Db, key: NewSigningKey): Promise<void> {
  await tx.exec(
    "INSERT INTO signing_keys (kid, alg, public_jwk, private_enc, created_at) VALUES ($1, $2, $3, $4, $5)",
    [key.kid, key.alg, key.public_jwk, key.private_enc, key.created_at],
  );
}
