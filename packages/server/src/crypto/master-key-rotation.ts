import type { Db, Row, SqlValue } from "../store/db.js";
import { DecryptError, type Keyring } from "./keyring.js";
import { privateKeyAad } from "./signing-keys.js";

/**
 * A column holding keyring envelopes. Each domain that seals something describes its column here,
 * so a master-key rotation finds every sealed value without knowing the domains.
 */
export interface SealedColumn {
  table: string;
  column: string;
  /** Primary-key columns, in order: rows are walked by keyset paging on them. */
  key: readonly string[];
  /** Other columns the aad is built from. */
  extra?: readonly string[];
  /** The record binding the value was sealed for (see README.md, invariant 2). */
  aad(row: Row): string;
}

export const SIGNING_KEYS_SEALED: SealedColumn = {
  table: "signing_keys",
  column: "private_enc",
  key: ["kid"],
  aad: (row) => privateKeyAad(String(row.kid)),
};

export interface RewrapReport {
  active_key_id: string;
  /** Values moved from a retired master key to the active one. */
  rewrapped: number;
  /** Values already under the active key. */
  current: number;
  /** Values changed by someone else while being rewrapped (they were written under that writer's key). */
  raced: number;
  /** Values that could not be opened: damaged, or sealed under a key that is not loaded. */
  failed: Array<{ record: string; reason: string }>;
}

export interface SealedInventory {
  active_key_id: string;
  /** Sealed values per master key id; `loaded` says whether this process can open them. */
  keys: Array<{ id: string; active: boolean; loaded: boolean; values: number }>;
  /** Values too damaged to even name their master key. */
  unreadable: number;
}

const BATCH = 200;

/**
 * Re-wraps every data key not under the active master key, online: values keep their iv, tag and
 * ciphertext (keyring.rewrap), each row is swapped with a compare-and-set on its old bytes so a
 * concurrent write is never overwritten, and a row's envelope names its master key, so a run that
 * stops halfway (crash, Ctrl-C) is finished by running it again. Damaged rows are reported by
 * record name and skipped, never rewritten.
 */
export async function rewrapAll(db: Db, keyring: Keyring, columns: readonly SealedColumn[]): Promise<RewrapReport> {
  const report: RewrapReport = { active_key_id: keyring.activeKeyId, rewrapped: 0, current: 0, raced: 0, failed: [] };
  for (const col of columns) {
    for await (const rows of walk(db, col)) {
      const updates: Array<{ row: Row; old: Buffer; next: Buffer }> = [];
      for (const row of rows) {
        const sealed = row[col.column] as Buffer;
        const record = col.aad(row);
        try {
          if (keyring.keyIdOf(sealed) === keyring.activeKeyId) {
            report.current++;
            continue;
          }
          updates.push({ row, old: sealed, next: keyring.rewrap(sealed, record) });
        } catch (err) {
          if (!(err instanceof DecryptError)) throw err;
          report.failed.push({ record, reason: err.message });
        }
      }
      if (updates.length === 0) continue;
      const where = col.key.map((k, i) => `${k} = $${i + 2}`).join(" AND ");
      const sql = `UPDATE ${col.table} SET ${col.column} = $1 WHERE ${where} AND ${col.column} = $${col.key.length + 2}`;
      await db.transaction(async (tx) => {
        for (const u of updates) {
          const params: SqlValue[] = [u.next, ...col.key.map((k) => u.row[k] as SqlValue), u.old];
          if ((await tx.exec(sql, params)) === 1) report.rewrapped++;
          else report.raced++;
        }
      });
    }
  }
  return report;
}

/** Counts sealed values per master key id: what a rotation still has to do, and what is unreadable. */
export async function sealedInventory(
  db: Db,
  keyring: Keyring,
  columns: readonly SealedColumn[],
  loadedIds: ReadonlySet<string>,
): Promise<SealedInventory> {
  const counts = new Map<string, number>([[keyring.activeKeyId, 0]]);
  let unreadable = 0;
  for (const col of columns) {
    for await (const rows of walk(db, col)) {
      for (const row of rows) {
        try {
          const id = keyring.keyIdOf(row[col.column] as Buffer);
          counts.set(id, (counts.get(id) ?? 0) + 1);
        } catch {
          unreadable++;
        }
      }
    }
  }
  return {
    active_key_id: keyring.activeKeyId,
    keys: [...counts].map(([id, values]) => ({
      id,
      active: id === keyring.activeKeyId,
      loaded: loadedIds.has(id),
      values,
    })),
    unreadable,
  };
}

/** Pages through a sealed column in primary-key order (row-value comparison, both engines). */
async function* walk(db: Db, col: SealedColumn): AsyncGenerator<Row[]> {
  const select = [...col.key, ...(col.extra ?? []), col.column].join(", ");
  const order = col.key.join(", ");
  const tuple = `(${order})`;
  const marks = `(${col.key.map((_, i) => `$${i + 1}`).join(", ")})`;
  let after: SqlValue[] | undefined;
  for (;;) {
    const params: SqlValue[] = after ? [...after, BATCH] : [BATCH];
    const where = after ? `AND ${tuple} > ${marks}` : "";
    const limit = `$${params.length}`;
    const rows = await db.query<Row>(
      `SELECT ${select} FROM ${col.table} WHERE ${col.column} IS NOT NULL ${where} ORDER BY ${order} LIMIT ${limit}`,
      params,
    );
    if (rows.length > 0) yield rows;
    if (rows.length < BATCH) return;
    const last = rows[rows.length - 1] as Row;
    after = col.key.map((k) => last[k] as SqlValue);
  }
}
