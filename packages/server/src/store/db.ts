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

/**
 * Bounds on every call to the store (docs/operations.md, "Database timeouts"). A database that
 * stops answering must turn into an error within a stated time, never into a request, a lock or
 * an audit write that waits forever.
 */
export interface StoreOptions {
  /** PostgreSQL connections per process. */
  poolSize: number;
  /** Opening a connection, or waiting for a free one in the pool. */
  connectTimeoutMs: number;
  /** PostgreSQL `statement_timeout`, set on every pooled session. */
  statementTimeoutMs: number;
  /** PostgreSQL `lock_timeout`: no lock (advisory or row) is waited for longer. */
  lockTimeoutMs: number;
  /** PostgreSQL `idle_in_transaction_session_timeout`: the server ends a session stalled in a transaction. */
  idleInTransactionTimeoutMs: number;
  /**
   * Client side, per query: a stalled connection returns no error, so after this the query fails
   * (StoreUnavailableError) and its connection is dropped, never reused. 0: statement timeout + 2 s.
   */
  queryTimeoutMs: number;
  /** Client side, per transaction: past this it is abandoned (its connection dropped, so it rolls back). */
  transactionTimeoutMs: number;
  /** SQLite `busy_timeout`: the longest wait for the file's write lock (it blocks the process meanwhile). */
  busyTimeoutMs: number;
}

export const DEFAULT_STORE_OPTIONS: Readonly<StoreOptions> = {
  poolSize: 10,
  connectTimeoutMs: 5000,
  statementTimeoutMs: 10_000,
  lockTimeoutMs: 3000,
  idleInTransactionTimeoutMs: 15_000,
  queryTimeoutMs: 0,
  transactionTimeoutMs: 30_000,
  busyTimeoutMs: 5000,
};

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

/**
 * Errors from the store layer itself: unreachable database, broken or stalled connection, a lock
 * or statement timeout. Answered as 503 `store_unavailable` (retry), never as a 500.
 */
export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super("store unavailable", { cause });
    this.name = "StoreUnavailableError";
  }
}
