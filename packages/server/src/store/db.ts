/**
 * The one storage interface. Every domain store (keys-store, audit-store, …) writes its SQL once,
 * in the common subset of SQLite and PostgreSQL, with `$1…$n` placeholders; the engines translate.
 *
 * Conventions shared by both engines (so rows look the same whichever engine answers):
 * - timestamps are BIGINT milliseconds since the epoch (returned as JS numbers);
 * - booleans are INTEGER 0/1; JSON is TEXT; bytes are BLOB/BYTEA (returned as Buffer).
 */
export type SqlValue = string | number | Buffer | null;
export type Row = Record<string, unknown>;

export interface TransactionOptions {
  /**
   * `false` for writes that may be lost on a power cut (not on a process crash): usage counters.
   * The commit then does not wait for the disk (SQLite synchronous=NORMAL under WAL; PostgreSQL
   * synchronous_commit=off), which on SQLite keeps an fsync off the event loop.
   */
  durable?: boolean;
}

export interface Db {
  readonly engine: "sqlite" | "postgres";
  /** Runs a statement and returns its rows (empty for statements without RETURNING). */
  query<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Runs a statement and returns how many rows it changed. */
  exec(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /**
   * Runs `fn` in one transaction: everything it writes commits together or not at all. SQLite
   * transactions are serial; PostgreSQL runs at READ COMMITTED, so a store that reads before it
   * writes locks what it read (`FOR UPDATE`, advisory locks). Nested calls join the outer one.
   */
  transaction<T>(fn: (tx: Db) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export async function queryOne<T>(db: Db, sql: string, params?: readonly SqlValue[]): Promise<T | undefined> {
  const rows = await db.query<T>(sql, params);
  return rows[0];
}

/** True when an error is a unique-constraint violation on either engine. */
export function isUniqueViolation(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { code?: unknown };
  return e.code === "23505" || e.code === "SQLITE_CONSTRAINT_UNIQUE" || e.code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

/** Errors from the store layer itself (unreachable database, broken connection). */
export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super("store unavailable", { cause });
    this.name = "StoreUnavailableError";
  }
}
