import type { Logger } from "../ops/logger.js";
import { LEGACY_MARK_LOCK } from "../store/advisory-locks.js";
import { type Db, queryOne } from "../store/db.js";
import type { IntegrityKeys } from "./integrity-keys.js";
import { hashSecret, KEYED_HASH_PREFIX, legacyHashSecret } from "./secret-format.js";

/**
 * Secrets stored before keyed hashes (plain SHA-256) keep working, but only the ones that existed
 * at the upgrade. Invariants:
 * - a plain hash is honoured only on a row whose `legacy_mark` is Keyward's MAC over (table, id,
 *   hash), under the legacy-hash subkey: database access alone cannot mark a row it inserted;
 * - marks are made once per database and group of tables, by `markLegacyHashes` on the first start
 *   with migration 7 (API keys, admin tokens) or 8 (refresh tokens), which records that in a MACed
 *   `meta` row; it never marks again, and refuses to while keyed hashes or marks exist without that
 *   row (someone deleted it to have their rows marked);
 * - the first successful use replaces a legacy hash by the keyed one and drops the mark, in one
 *   compare-and-set UPDATE.
 * See docs/operations.md "Stored hashes" for what is left.
 */
export const LEGACY_HASH_TABLES = ["api_keys", "admin_tokens", "refresh_tokens"] as const;
export type LegacyHashTable = (typeof LEGACY_HASH_TABLES)[number];

/** Each group was keyed by a different version, so each is marked once, on its own upgrade. */
const GROUPS: ReadonlyArray<{ done: string; tables: readonly LegacyHashTable[] }> = [
  { done: "legacy_hashes_v1", tables: ["api_keys", "admin_tokens"] },
  // Refresh tokens were keyed one version later (migration 8); they live a refresh lifetime at most.
  { done: "legacy_refresh_hashes_v1", tables: ["refresh_tokens"] },
];

function markData(table: LegacyHashTable, id: string, hash: string): string {
  return `keyward legacy hash\n${table}\n${id}\n${hash}`;
}

export async function markLegacyHashes(deps: { db: Db; keys: IntegrityKeys; logger?: Logger }): Promise<void> {
  for (const group of GROUPS) await markGroup(deps, group.done, group.tables);
}

async function markGroup(
  deps: { db: Db; keys: IntegrityKeys; logger?: Logger },
  doneKey: string,
  tables: readonly LegacyHashTable[],
): Promise<void> {
  const { db, keys } = deps;
  const done = await queryOne<{ value: string }>(db, "SELECT value FROM meta WHERE key = $1", [doneKey]);
  if (done) {
    if (keys.verify("legacyHash", doneKey, done.value)) return;
    deps.logger?.error({ marker: doneKey }, "legacy hash marker is not Keyward's: no row is marked legacy");
    return;
  }
  await db.transaction(async (tx) => {
    // Replicas starting at once on a fresh upgrade: one marks, the others wait and find it done.
    if (tx.engine === "postgres") await tx.query("SELECT pg_advisory_xact_lock($1)", [LEGACY_MARK_LOCK]);
    if (await queryOne(tx, "SELECT key FROM meta WHERE key = $1", [doneKey])) return; // another replica
    for (const table of tables) {
      const keyed = await queryOne(
        tx,
        `SELECT id FROM ${table} WHERE hash LIKE '${KEYED_HASH_PREFIX}%' OR legacy_mark IS NOT NULL LIMIT 1`,
      );
      if (keyed) {
        deps.logger?.error({ table }, "legacy hash marker missing while keyed hashes exist: no row is marked legacy");
        return;
      }
    }
    let marked = 0;
    for (const table of tables) {
      const rows = await tx.query<{ id: string; hash: string }>(`SELECT id, hash FROM ${table}`);
      for (const r of rows) {
        await tx.exec(`UPDATE ${table} SET legacy_mark = $1 WHERE id = $2`, [
          keys.mac("legacyHash", markData(table, r.id, r.hash)),
          r.id,
        ]);
        marked++;
      }
    }
    await tx.exec("INSERT INTO meta (key, value) VALUES ($1, $2)", [doneKey, keys.mac("legacyHash", doneKey)]);
    if (marked > 0)
      deps.logger?.warn({ marked }, "secrets stored with plain SHA-256 marked legacy; each is re-hashed on first use");
  });
}

/**
 * Looks for `secret` among legacy rows of `table`; a marked one is upgraded to the keyed hash.
 * True when the keyed hash now names a row (read it again by `hashSecret`).
 */
export async function upgradeLegacySecret(
  db: Db,
  keys: IntegrityKeys,
  table: LegacyHashTable,
  secret: string,
): Promise<boolean> {
  const legacy = legacyHashSecret(secret);
  const row = await queryOne<{ id: string; legacy_mark: string | null }>(
    db,
    `SELECT id, legacy_mark FROM ${table} WHERE hash = $1`,
    [legacy],
  );
  if (!row || row.legacy_mark === null) return false;
  if (!keys.verify("legacyHash", markData(table, row.id, legacy), row.legacy_mark)) return false;
  await db.exec(`UPDATE ${table} SET hash = $1, legacy_mark = NULL WHERE id = $2 AND hash = $3`, [
    hashSecret(secret, keys),
    row.id,
    legacy,
  ]);
  return true;
}
