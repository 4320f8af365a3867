import { AUDIT_APPEND_LOCK } from "../store/advisory-locks.js";
import { type Db, queryOne, type SqlValue, type TransactionOptions } from "../store/db.js";
import { type ChainedFields, type ChainKeying, type ChainRow, GENESIS_HASH, linkHash } from "./audit-chain.js";

/** An event ready to store: scrubbed, details serialized. seq and hashes are assigned on append. */
export type AuditRowInput = Omit<ChainedFields, "seq">;
export type AuditRow = ChainRow;

export interface AuditListFilter {
  since?: number;
  until?: number;
  action?: string;
  principal?: string;
  /** Keyset paging, newest first: only rows with a smaller seq. */
  beforeSeq?: number;
  limit: number;
}

const COLUMNS = [
  "seq",
  "time",
  "actor",
  "action",
  "target",
  "outcome",
  "code",
  "ip",
  "request_id",
  "details",
  "prev_hash",
  "hash",
] as const;
const COLS = COLUMNS.join(", ");

/**
 * Multi-row INSERTs cut round trips for big batches. Only these row counts are used, so each
 * engine prepares at most three statements; 100 rows × 12 columns stays far below both engines'
 * parameter limits.
 */
const CHUNK_SIZES = [100, 10, 1] as const;
const insertSql = new Map<number, string>();

function insertStatement(rows: number): string {
  let sql = insertSql.get(rows);
  if (!sql) {
    const tuples: string[] = [];
    for (let r = 0; r < rows; r++) {
      const base = r * COLUMNS.length;
      tuples.push(`(${COLUMNS.map((_, c) => `$${base + c + 1}`).join(", ")})`);
    }
    sql = `INSERT INTO audit_events (${COLS}) VALUES ${tuples.join(", ")}`;
    insertSql.set(rows, sql);
  }
  return sql;
}

function toParams(r: AuditRow): SqlValue[] {
  return [
    r.seq,
    r.time,
    r.actor,
    r.action,
    r.target,
    r.outcome,
    r.code,
    r.ip,
    r.request_id,
    r.details,
    r.prev_hash,
    r.hash,
  ];
}

/** pg may hand BIGINT back as a string depending on the pool's parsers; the chain needs numbers. */
function normalize(r: AuditRow): AuditRow {
  return { ...r, seq: Number(r.seq), time: Number(r.time) };
}

/** `keying` decides each new row's link (audit-chain.ts); without it rows get legacy links (tests). */
export function createAuditStore(db: Db, keying?: ChainKeying) {
  return {
    /**
     * Appends a batch as one transaction: all rows or none. The head is read under the lock (the
     * PostgreSQL advisory lock; SQLite's BEGIN IMMEDIATE), so concurrent appenders, including other
     * replicas, queue up behind each other and seq stays dense.
     */
    async append(inputs: readonly AuditRowInput[], opts: TransactionOptions = {}): Promise<AuditRow[]> {
      if (inputs.length === 0) return [];
      return db.transaction(async (tx) => {
        if (tx.engine === "postgres") await tx.query("SELECT pg_advisory_xact_lock($1)", [AUDIT_APPEND_LOCK]);
        const head = await queryOne<{ seq: number; hash: string }>(
          tx,
          "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
        );
        let seq = head ? Number(head.seq) : 0;
        let prev = head?.hash ?? GENESIS_HASH;
        const rows = inputs.map((input): AuditRow => {
          seq++;
          const fields: ChainedFields = { ...input, seq };
          const hash = linkHash(prev, fields, keying);
          const row = { ...fields, prev_hash: prev, hash };
          prev = hash;
          return row;
        });
        let i = 0;
        while (i < rows.length) {
          const size = CHUNK_SIZES.find((s) => s <= rows.length - i) ?? 1;
          await tx.exec(insertStatement(size), rows.slice(i, i + size).flatMap(toParams));
          i += size;
        }
        return rows;
      }, opts);
    },

    /** Newest first. `principal` matches the actor or the target. Fetches `limit` rows exactly. */
    async list(f: AuditListFilter): Promise<AuditRow[]> {
      const where: string[] = [];
      const params: SqlValue[] = [];
      const param = (v: SqlValue): string => {
        params.push(v);
        return `$${params.length}`;
      };
      if (f.since !== undefined) where.push(`time >= ${param(f.since)}`);
      if (f.until !== undefined) where.push(`time < ${param(f.until)}`);
      if (f.action !== undefined) where.push(`action = ${param(f.action)}`);
      if (f.principal !== undefined) {
        const p = param(f.principal);
        where.push(`(actor = ${p} OR target = ${p})`);
      }
      if (f.beforeSeq !== undefined) where.push(`seq < ${param(f.beforeSeq)}`);
      const clause = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
      const rows = await db.query<AuditRow>(
        `SELECT ${COLS} FROM audit_events ${clause} ORDER BY seq DESC LIMIT ${param(f.limit)}`,
        params,
      );
      return rows.map(normalize);
    },

    /** Oldest first, after `afterSeq`: the verifier walks the whole chain in these pages. */
    async page(afterSeq: number, limit: number): Promise<AuditRow[]> {
      const rows = await db.query<AuditRow>(`SELECT ${COLS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`, [
        afterSeq,
        limit,
      ]);
      return rows.map(normalize);
    },
  };
}

export type AuditStore = ReturnType<typeof createAuditStore>;
