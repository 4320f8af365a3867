import type { SealedColumn } from "../crypto/master-key-rotation.js";
import type { Db } from "../store/db.js";

/** A user credential without its value: what lists and responses are built from. */
export interface UserCredentialMeta {
  user_id: string;
  name: string;
  version: number;
  created_at: number;
  updated_at: number;
  created_by: string;
}

/** A user and the metadata of every credential the user has, by name. */
export interface UserWithCredentials {
  user: string;
  credentials: UserCredentialMeta[];
}

export interface UserCredentialRow extends UserCredentialMeta {
  value_enc: Buffer;
}

const META = "user_id, name, version, created_at, updated_at, created_by";
const META_OF_C = META.split(", ")
  .map((column) => `c.${column}`)
  .join(", ");

/**
 * The aad of a user credential's sealed value: a ciphertext copied to another user, another name
 * or another version fails to open. Neither ids nor names can hold `:`, so the parts cannot blur.
 */
export const userValueAad = (user: string, name: string, version: number) =>
  `user_credentials:${user}:${name}:${version}:value`;

/** For master-key rotation. */
export const USER_CREDENTIAL_SEALED_COLUMNS: readonly SealedColumn[] = [
  {
    table: "user_credentials",
    column: "value_enc",
    key: ["user_id", "name"],
    extra: ["version"],
    aad: (row) => userValueAad(String(row.user_id), String(row.name), Number(row.version)),
  },
];

const normalize = <T extends UserCredentialMeta>(r: T): T => ({
  ...r,
  version: Number(r.version),
  created_at: Number(r.created_at),
  updated_at: Number(r.updated_at),
});

export function createUsersStore(db: Db) {
  const forUpdate = db.engine === "postgres" ? " FOR UPDATE" : "";
  return {
    /**
     * Locks the (user, name) row for the rest of `tx`, creating an empty placeholder (version 0)
     * when there is none, and answers its current state. The placeholder makes the lock exist
     * before the first value does: on PostgreSQL a second writer's INSERT waits on the first's
     * uncommitted row, then finds it, so concurrent PUTs of a new name queue up instead of one
     * failing on the primary key. SQLite runs transactions one at a time anyway. The placeholder
     * never commits: the caller always writes the value (or the transaction rolls back).
     */
    async lock(tx: Db, user: string, name: string, now: number, by: string): Promise<UserCredentialMeta> {
      // A DELETE committing between the two statements leaves nothing to lock: insert again.
      for (let attempt = 0; attempt < 3; attempt++) {
        await tx.exec(
          `INSERT INTO user_credentials (user_id, name, value_enc, version, created_at, updated_at, created_by)
           VALUES ($1, $2, $3, 0, $4, $4, $5) ON CONFLICT (user_id, name) DO NOTHING`,
          [user, name, Buffer.alloc(0), now, by],
        );
        const row = (
          await tx.query<UserCredentialMeta>(
            `SELECT ${META} FROM user_credentials WHERE user_id = $1 AND name = $2${forUpdate}`,
            [user, name],
          )
        )[0];
        if (row) return normalize(row);
      }
      throw new Error("user_credentials: cannot lock the row (deleted concurrently, again and again)");
    },

    async write(tx: Db, row: UserCredentialRow): Promise<void> {
      await tx.exec(
        `UPDATE user_credentials SET value_enc = $3, version = $4, created_at = $5, updated_at = $6, created_by = $7
         WHERE user_id = $1 AND name = $2`,
        [row.user_id, row.name, row.value_enc, row.version, row.created_at, row.updated_at, row.created_by],
      );
    },

    /** Deletes the value for good; answers whether there was one. */
    async remove(tx: Db, user: string, name: string): Promise<boolean> {
      return (await tx.exec("DELETE FROM user_credentials WHERE user_id = $1 AND name = $2", [user, name])) > 0;
    },

    /** One page of a user's credentials by name, without values (limit + 1 rows, for paging). */
    async list(user: string, after: string | undefined, limit: number): Promise<UserCredentialMeta[]> {
      const rows = await db.query<UserCredentialMeta>(
        `SELECT ${META} FROM user_credentials WHERE user_id = $1 AND name > $2 ORDER BY name LIMIT $3`,
        [user, after ?? "", limit + 1],
      );
      return rows.map(normalize);
    },

    /**
     * One page of users who have credentials (or, with `credential`, that one), by id, each with
     * all their credentials' metadata (limit + 1 users, for paging). One statement, so a page is
     * one snapshot: a user is never listed without the credentials that put it on the page.
     */
    async users(after: string | undefined, limit: number, credential?: string): Promise<UserWithCredentials[]> {
      const only = credential === undefined ? "" : " AND name = $3";
      const rows = await db.query<UserCredentialMeta>(
        `WITH page AS (
           SELECT DISTINCT user_id FROM user_credentials
           WHERE user_id > $1 AND version > 0${only} ORDER BY user_id LIMIT $2
         )
         SELECT ${META_OF_C} FROM user_credentials c JOIN page p ON p.user_id = c.user_id
         WHERE c.version > 0 ORDER BY c.user_id, c.name`,
        credential === undefined ? [after ?? "", limit + 1] : [after ?? "", limit + 1, credential],
      );
      const out: UserWithCredentials[] = [];
      for (const row of rows) {
        const last = out[out.length - 1];
        if (last?.user === row.user_id) last.credentials.push(normalize(row));
        else out.push({ user: row.user_id, credentials: [normalize(row)] });
      }
      return out;
    },

    /** Every sealed value of a user (the resolve path caches them per user). */
    async sealed(user: string): Promise<UserCredentialRow[]> {
      const rows = await db.query<UserCredentialRow>(
        `SELECT ${META}, value_enc FROM user_credentials WHERE user_id = $1 AND version > 0`,
        [user],
      );
      return rows.map(normalize);
    },
  };
}

export type UsersStore = ReturnType<typeof createUsersStore>;
