import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import {
  type Db,
  DEFAULT_STORE_OPTIONS,
  type Row,
  type SqlValue,
  type StoreOptions,
  type TransactionOptions,
} from "./db.js";

/**
 * SQLite engine on better-sqlite3: WAL with synchronous=FULL, so a committed write survives a
 * power cut. better-sqlite3 is synchronous; a transaction spans awaits, so we serialize: while a
 * transaction is open, statements from outside it wait for it to end instead of joining it.
 */
export function openSqlite(path: string, opts: Partial<Pick<StoreOptions, "busyTimeoutMs">> = {}): Db {
  if (path !== ":memory:") ownerOnly(path);
  const conn = new Database(path);
  conn.pragma("journal_mode = WAL");
  conn.pragma("synchronous = FULL");
  conn.pragma("foreign_keys = ON");
  // Bounded: better-sqlite3 waits for a locked file synchronously, so the whole process waits.
  const busyMs = Math.max(0, Math.trunc(opts.busyTimeoutMs ?? DEFAULT_STORE_OPTIONS.busyTimeoutMs));
  conn.pragma(`busy_timeout = ${busyMs}`);
  return new SqliteDb(conn);
}

/**
 * The database holds every hash, sealed secret and audit record: only Keyward's user may read it.
 * SQLite creates a file with 0644 (less the umask) and gives its -wal, -shm and -journal files
 * the mode of the database file, so the database file is created 0600 here, before SQLite opens
 * it and before any byte is written; files left by an older version (0644) are narrowed on start.
 * A folder created for it is 0700. Errors other than "absent" stop the start: a database we
 * cannot make private is not one to write secrets into.
 */
function ownerOnly(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fd = openSync(path, "a", 0o600);
  try {
    fchmodSync(fd, 0o600); // an existing file keeps its old mode through open: set it
  } finally {
    closeSync(fd);
  }
  for (const suffix of ["-wal", "-shm", "-journal"]) {
    try {
      chmodSync(path + suffix, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
}

type Translated = { sql: string; order: number[] };

class SqliteDb implements Db {
  readonly engine = "sqlite" as const;
  private readonly statements = new Map<string, { stmt: Database.Statement; order: number[] }>();
  private txTail: Promise<void> = Promise.resolve();
  private txOpen = false;

  /**
   * Transaction control, prepared once: `exec` and `pragma` parse their SQL text on every call,
   * and the audit log's group commit runs these for every batch (a few requests' worth).
   */
  private readonly control: Record<"begin" | "commit" | "rollback" | "relax" | "restore", Database.Statement>;

  constructor(private readonly conn: Database.Database) {
    this.control = {
      begin: conn.prepare("BEGIN IMMEDIATE"),
      commit: conn.prepare("COMMIT"),
      rollback: conn.prepare("ROLLBACK"),
      relax: conn.prepare("PRAGMA synchronous = NORMAL"),
      restore: conn.prepare("PRAGMA synchronous = FULL"),
    };
  }

  async query<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    if (this.txOpen) await this.waitForTx();
    return this.runQuery<T>(sql, params);
  }

  async exec(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    if (this.txOpen) await this.waitForTx();
    return this.runExec(sql, params);
  }

  async transaction<T>(fn: (tx: Db) => Promise<T>, opts?: TransactionOptions): Promise<T> {
    let release!: () => void;
    const previous = this.txTail;
    this.txTail = new Promise((resolve) => {
      release = resolve;
    });
    await previous;
    this.txOpen = true;
    const tx = new SqliteTx(this);
    const relaxed = opts?.durable === false;
    try {
      if (relaxed) this.control.relax.run();
      this.control.begin.run();
      const result = await fn(tx);
      this.control.commit.run();
      return result;
    } catch (err) {
      if (this.conn.inTransaction) this.control.rollback.run();
      throw err;
    } finally {
      if (relaxed) this.control.restore.run();
      tx.closed = true;
      this.txOpen = false;
      release();
    }
  }

  async ping(): Promise<void> {
    this.conn.prepare("SELECT 1").get();
  }

  async close(): Promise<void> {
    await this.txTail;
    this.conn.close();
  }

  runQuery<T>(sql: string, params: readonly SqlValue[]): T[] {
    const { stmt, order } = this.prepare(sql);
    const args = order.map((i) => params[i] ?? null);
    if (stmt.reader) return stmt.all(...args) as T[];
    stmt.run(...args);
    return [];
  }

  runExec(sql: string, params: readonly SqlValue[]): number {
    const { stmt, order } = this.prepare(sql);
    const args = order.map((i) => params[i] ?? null);
    if (stmt.reader) return stmt.all(...args).length;
    return stmt.run(...args).changes;
  }

  private async waitForTx(): Promise<void> {
    while (this.txOpen) await this.txTail;
  }

  private prepare(sql: string): { stmt: Database.Statement; order: number[] } {
    let cached = this.statements.get(sql);
    if (!cached) {
      const t = translate(sql);
      cached = { stmt: this.conn.prepare(t.sql), order: t.order };
      this.statements.set(sql, cached);
    }
    return cached;
  }

  /** Runs multi-statement DDL (migrations). */
  execScript(sql: string): void {
    this.conn.exec(sql);
  }
}

class SqliteTx implements Db {
  readonly engine = "sqlite" as const;
  closed = false;
  constructor(private readonly db: SqliteDb) {}
  async query<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    this.assertOpen();
    return this.db.runQuery<T>(sql, params);
  }
  async exec(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    this.assertOpen();
    return this.db.runExec(sql, params);
  }
  async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    return fn(this);
  }
  /** Runs multi-statement SQL (a migration) inside this transaction. */
  execScript(sql: string): void {
    this.assertOpen();
    this.db.execScript(sql);
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {}
  private assertOpen(): void {
    if (this.closed) throw new Error("transaction already finished");
  }
}

/** `$1…$n` → `?` in order of appearance, remembering which parameter each `?` takes. */
function translate(sql: string): Translated {
  const order: number[] = [];
  const out = sql.replace(/\$(\d+)/g, (_m, n: string) => {
    order.push(Number(n) - 1);
    return "?";
  });
  return { sql: out, order };
}

/** A SQLite database or transaction: one that can run multi-statement SQL (`execScript`). */
export function isSqliteDb(db: Db): db is Db & { execScript(sql: string): void } {
  return db instanceof SqliteDb || db instanceof SqliteTx;
}
