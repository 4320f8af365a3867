import { randomBytes } from "node:crypto";
import type { Clock } from "../clock.js";
import type { Logger } from "../ops/logger.js";
import { AUDIT_APPEND_LOCK } from "../store/advisory-locks.js";
import { type Db, queryOne } from "../store/db.js";
import { createIntegrityKeys, INTEGRITY_ROOT_BYTES, type IntegrityKeys } from "./integrity-keys.js";
import type { Keyring } from "./keyring.js";
import type { SealedColumn } from "./master-key-rotation.js";

/**
 * The integrity root: 32 random bytes, created once per database, stored only sealed by the
 * keyring in `integrity_keys`, and re-wrapped (never changed) by a master-key rotation. Every
 * integrity subkey is derived from it (integrity-keys.ts), so rows keyed before a rotation keep
 * verifying after it, with no old master key loaded. See README.md, "Integrity keys".
 *
 * `audit_keyed_from` is the first audit seq whose link is keyed: rows before it were written by a
 * version without keyed links. It is part of the root's aad, so editing it makes the root fail to
 * open instead of moving the switch point.
 */
export interface Integrity {
  keys: IntegrityKeys;
  auditKeyedFrom: number;
  /** True when this call created the root (first start of this version on this database). */
  created: boolean;
}

const ROOT_ID = "root";

export function integrityRootAad(auditKeyedFrom: number): string {
  return `integrity_keys:${ROOT_ID}:key:audit_keyed_from=${auditKeyedFrom}`;
}

export const INTEGRITY_ROOT_SEALED: SealedColumn = {
  table: "integrity_keys",
  column: "key_enc",
  key: ["id"],
  extra: ["audit_keyed_from"],
  aad: (row) => integrityRootAad(Number(row.audit_keyed_from)),
};

interface RootRow {
  key_enc: Buffer;
  audit_keyed_from: number;
}

/**
 * Opens the root, creating it on first use. Creation takes the audit append lock (and SQLite's
 * write lock), so the switch point is exactly the head at that moment and concurrent replicas
 * create one root. A root that does not open (wrong master key, edited row) throws: nothing keyed
 * can be checked or written without it.
 */
export async function openIntegrity(deps: {
  db: Db;
  keyring: Keyring;
  clock: Clock;
  logger?: Logger;
}): Promise<Integrity> {
  const { db, keyring, clock } = deps;
  const existing = await readRoot(db);
  if (existing) return { ...openRoot(keyring, existing), created: false };
  const made = await db.transaction(async (tx) => {
    if (tx.engine === "postgres") await tx.query("SELECT pg_advisory_xact_lock($1)", [AUDIT_APPEND_LOCK]);
    const raced = await readRoot(tx);
    if (raced) return { ...openRoot(keyring, raced), created: false };
    const head = await queryOne<{ seq: number | string | null }>(tx, "SELECT MAX(seq) AS seq FROM audit_events");
    const auditKeyedFrom = Number(head?.seq ?? 0) + 1;
    const root = randomBytes(INTEGRITY_ROOT_BYTES);
    try {
      await tx.exec("INSERT INTO integrity_keys (id, key_enc, audit_keyed_from, created_at) VALUES ($1, $2, $3, $4)", [
        ROOT_ID,
        keyring.seal(root, integrityRootAad(auditKeyedFrom)),
        auditKeyedFrom,
        clock.now(),
      ]);
      return { keys: createIntegrityKeys(root), auditKeyedFrom, created: true };
    } finally {
      root.fill(0);
    }
  });
  // Once per database. Seen again later, it means the root row was deleted: everything keyed
  // before (audit links from the old switch point, keyed hashes) stops verifying.
  if (made.created) {
    deps.logger?.warn(
      { audit_keyed_from: made.auditKeyedFrom },
      "integrity root created: audit links are keyed from here on",
    );
  }
  return made;
}

async function readRoot(db: Db): Promise<RootRow | undefined> {
  const row = await queryOne<RootRow>(db, "SELECT key_enc, audit_keyed_from FROM integrity_keys WHERE id = $1", [
    ROOT_ID,
  ]);
  return row ? { key_enc: row.key_enc, audit_keyed_from: Number(row.audit_keyed_from) } : undefined;
}

function openRoot(keyring: Keyring, row: RootRow): Omit<Integrity, "created"> {
  const root = keyring.open(row.key_enc, integrityRootAad(row.audit_keyed_from));
  try {
    return { keys: createIntegrityKeys(root), auditKeyedFrom: row.audit_keyed_from };
  } finally {
    root.fill(0);
  }
}
