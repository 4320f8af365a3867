import type { SealedColumn } from "../crypto/master-key-rotation.js";
import type { Db, SqlValue } from "../store/db.js";

export type CredentialType = "static" | "oauth2_client_credentials";
export type CredentialStatus = "ok" | "pending" | "error" | "deleted";

/** A row of `credentials`. A deleted credential stays as a tombstone: `deleted_at` set, no versions. */
export interface CredentialRow {
  name: string;
  type: CredentialType;
  /** The version agents are served; null while a token provider has no token yet, or when deleted. */
  current_version: number | null;
  /** The highest version number ever given out, so numbers never repeat, across deletion too. */
  latest_version: number;
  egress: string | null; // JSON EgressConfig
  provider: string | null; // JSON ProviderConfig (no secret)
  provider_secret: Buffer | null; // sealed client_secret
  /** The clock value when the provider config was last written: binds its sealed secret. */
  config_seq: number;
  status: CredentialStatus;
  status_message: string | null;
  status_at: number | null;
  refresh_lease_until: number | null;
  /** The clock value of the last change an agent can see (a new current version, deletion). */
  change_seq: number;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
  /** Keyward's MAC over what decides the value served (credential-integrity.ts); null on rows it never wrote. */
  pointer_mac: string | null;
}

export type VersionSource = "set" | "rollback" | "token";

export interface VersionRow {
  name: string;
  version: number;
  value_enc: Buffer;
  source: VersionSource;
  rolled_back_from: number | null;
  expires_at: number | null;
  created_at: number;
  created_by: string;
}

export type VersionMeta = Omit<VersionRow, "value_enc">;

const COLUMNS = [
  "name",
  "type",
  "current_version",
  "latest_version",
  "egress",
  "provider",
  "provider_secret",
  "config_seq",
  "status",
  "status_message",
  "status_at",
  "refresh_lease_until",
  "change_seq",
  "created_at",
  "updated_at",
  "deleted_at",
  "pointer_mac",
] as const;
const COLS = COLUMNS.join(", ");
const VERSION_META = "name, version, source, rolled_back_from, expires_at, created_at, created_by";

/** The aad of a version's sealed value: a ciphertext moved to another name or version fails to open. */
export const valueAad = (name: string, version: number) => `credential_versions:${name}:${version}:value`;
/** The aad of a token provider's client secret, bound to the config write that sealed it. */
export const clientSecretAad = (name: string, configSeq: number) => `credentials:${name}:client_secret:${configSeq}`;

/** Every column the keyring sealed, for master-key rotation. */
export const CREDENTIAL_SEALED_COLUMNS: readonly SealedColumn[] = [
  {
    table: "credential_versions",
    column: "value_enc",
    key: ["name", "version"],
    aad: (row) => valueAad(String(row.name), Number(row.version)),
  },
  {
    table: "credentials",
    column: "provider_secret",
    key: ["name"],
    aad: (row) => clientSecretAad(String(row.name), Number(row.config_seq)),
    extra: ["config_seq"],
  },
];

const normalize = (r: CredentialRow): CredentialRow => ({
  ...r,
  current_version: r.current_version === null ? null : Number(r.current_version),
  latest_version: Number(r.latest_version),
  config_seq: Number(r.config_seq),
  change_seq: Number(r.change_seq),
});

export function createCredentialsStore(db: Db) {
  const forUpdate = db.engine === "postgres" ? " FOR UPDATE" : "";
  return {
    /**
     * Takes the next value of the credential clock. The UPDATE locks the clock's one row until the
     * transaction ends, so every credential and grant change is serialized and commits in clock
     * order: a reader who sees change n has every change before n visible too. That is what makes
     * `since` cursors exact across replicas, and versions of one credential linear.
     */
    async nextSeq(tx: Db): Promise<number> {
      const row = (
        await tx.query<{ seq: number }>("UPDATE credential_clock SET seq = seq + 1 WHERE id = 1 RETURNING seq")
      )[0];
      if (!row) throw new Error("credential_clock is missing its row");
      return Number(row.seq);
    },

    async get(name: string, tx: Db = db): Promise<CredentialRow | undefined> {
      const row = (await tx.query<CredentialRow>(`SELECT ${COLS} FROM credentials WHERE name = $1`, [name]))[0];
      return row && normalize(row);
    },

    async getForUpdate(tx: Db, name: string): Promise<CredentialRow | undefined> {
      const row = (
        await tx.query<CredentialRow>(`SELECT ${COLS} FROM credentials WHERE name = $1${forUpdate}`, [name])
      )[0];
      return row && normalize(row);
    },

    async list(after: string | undefined, limit: number): Promise<CredentialRow[]> {
      const rows = await db.query<CredentialRow>(
        `SELECT ${COLS} FROM credentials WHERE deleted_at IS NULL AND name > $1 ORDER BY name LIMIT $2`,
        [after ?? "", limit + 1],
      );
      return rows.map(normalize);
    },

    /** Names of live credentials among `names` (for grant validation). */
    async existing(tx: Db, names: readonly string[]): Promise<Set<string>> {
      const found = new Set<string>();
      for (let i = 0; i < names.length; i += 500) {
        const chunk = names.slice(i, i + 500);
        const marks = chunk.map((_, j) => `$${j + 1}`).join(", ");
        const rows = await tx.query<{ name: string }>(
          `SELECT name FROM credentials WHERE deleted_at IS NULL AND name IN (${marks})`,
          chunk,
        );
        for (const r of rows) found.add(r.name);
      }
      return found;
    },

    /** Inserts or replaces the row (a name that was deleted keeps its tombstone's row). */
    async save(tx: Db, row: CredentialRow, exists: boolean): Promise<void> {
      const values = COLUMNS.map((c) => row[c] as SqlValue);
      if (exists) {
        const sets = COLUMNS.slice(1).map((c, i) => `${c} = $${i + 2}`);
        await tx.exec(`UPDATE credentials SET ${sets.join(", ")} WHERE name = $1`, values);
      } else {
        await tx.exec(
          `INSERT INTO credentials (${COLS}) VALUES (${COLUMNS.map((_, i) => `$${i + 1}`).join(", ")})`,
          values,
        );
      }
    },

    /** The highest version stored for `name` (null: none): a pointer below it was put back. */
    async maxVersion(name: string, tx: Db = db): Promise<number | null> {
      const row = (
        await tx.query<{ v: number | string | null }>(
          "SELECT MAX(version) AS v FROM credential_versions WHERE name = $1",
          [name],
        )
      )[0];
      return row?.v === null || row?.v === undefined ? null : Number(row.v);
    },

    async insertVersion(tx: Db, v: VersionRow): Promise<void> {
      await tx.exec(
        `INSERT INTO credential_versions (name, version, value_enc, source, rolled_back_from, expires_at, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [v.name, v.version, v.value_enc, v.source, v.rolled_back_from, v.expires_at, v.created_at, v.created_by],
      );
    },

    async getVersion(name: string, version: number, tx: Db = db): Promise<VersionRow | undefined> {
      const row = (
        await tx.query<VersionRow>(
          `SELECT ${VERSION_META}, value_enc FROM credential_versions WHERE name = $1 AND version = $2`,
          [name, version],
        )
      )[0];
      return row && { ...row, version: Number(row.version) };
    },

    /** Newest first, without the sealed values. */
    async listVersions(name: string, limit: number): Promise<VersionMeta[]> {
      const rows = await db.query<VersionMeta>(
        `SELECT ${VERSION_META} FROM credential_versions WHERE name = $1 ORDER BY version DESC LIMIT $2`,
        [name, limit],
      );
      return rows.map((r) => ({ ...r, version: Number(r.version) }));
    },

    async deleteVersions(tx: Db, name: string): Promise<void> {
      await tx.exec("DELETE FROM credential_versions WHERE name = $1", [name]);
    },

    /** Drops a token provider's expired tokens (useless, and one secret fewer at rest), keeping `keep`. */
    async pruneExpiredTokens(tx: Db, name: string, keep: number, now: number): Promise<void> {
      await tx.exec(
        "DELETE FROM credential_versions WHERE name = $1 AND version <> $2 AND source = 'token' AND expires_at < $3",
        [name, keep, now],
      );
    },

    /** Live token providers, for scheduling refreshes. */
    async listProviders(): Promise<CredentialRow[]> {
      const rows = await db.query<CredentialRow>(
        `SELECT ${COLS} FROM credentials WHERE deleted_at IS NULL AND type = 'oauth2_client_credentials' ORDER BY name`,
      );
      return rows.map(normalize);
    },

    /**
     * Claims the right to refresh `name` until `until`, unless another replica holds a lease that
     * has not run out. True when claimed.
     */
    async claimRefresh(name: string, configSeq: number, now: number, until: number): Promise<boolean> {
      const n = await db.exec(
        `UPDATE credentials SET refresh_lease_until = $4
         WHERE name = $1 AND config_seq = $2 AND deleted_at IS NULL
           AND (refresh_lease_until IS NULL OR refresh_lease_until <= $3)`,
        [name, configSeq, now, until],
      );
      return n > 0;
    },

    /** Records how the last refresh went and frees the lease; ignored if the config changed since. */
    async setStatus(
      name: string,
      configSeq: number,
      status: CredentialStatus,
      message: string | null,
      at: number,
    ): Promise<void> {
      await db.exec(
        `UPDATE credentials SET status = $3, status_message = $4, status_at = $5, refresh_lease_until = NULL
         WHERE name = $1 AND config_seq = $2 AND deleted_at IS NULL`,
        [name, configSeq, status, message, at],
      );
    },
  };
}

export type CredentialsStore = ReturnType<typeof createCredentialsStore>;
