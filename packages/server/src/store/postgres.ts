import pg from "pg";
import type { Db, Row, SqlValue, TransactionOptions } from "./db.js";
import { StoreUnavailableError } from "./db.js";

// BIGINT (int8) columns hold epoch milliseconds and counters: well inside 2^53.
const types = {
  getTypeParser: (oid: number, format?: string) => {
    if (oid === 20) return (v: string) => Number(v);
    // biome-ignore lint/suspicious/noExplicitAny: pg's typing of getTypeParser is overloaded
    return (pg.types.getTypeParser as any)(oid, format);
  },
};

export interface PostgresOptions {
  /** Schema to use (created if missing); lets tests run side by side in one database. */
  schema?: string;
  max?: number;
}

/** PostgreSQL engine on a pg Pool. */
export async function openPostgres(url: string, opts: PostgresOptions = {}): Promise<Db> {
  const schema = opts.schema;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error("invalid schema name");
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    types,
    connectionTimeoutMillis: 5000,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  // An idle client that loses its connection emits here; without a listener the process dies.
  pool.on("error", () => {});
  if (schema) {
    const c = await connect(pool);
    try {
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    } finally {
      c.release();
    }
  }
  return new PgDb(pool);
}

const guarded = new WeakSet<pg.PoolClient>();

async function connect(pool: pg.Pool): Promise<pg.PoolClient> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw new StoreUnavailableError(err);
  }
  // A checked-out client whose connection dies emits "error"; unheard, that would end the
  // process. The query in flight fails on its own, and the pool drops the broken client.
  if (!guarded.has(client)) {
    client.on("error", () => {});
    guarded.add(client);
  }
  return client;
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return (
    code === "ECONNREFUSED" ||
    code === "ECONNRESET" ||
    code === "ETIMEDOUT" ||
    code === "57P01" ||
    code === "57P03" ||
    (err instanceof Error && /Connection terminated|timeout exceeded when trying to connect/.test(err.message))
  );
}

async function run(q: pg.Pool | pg.PoolClient, sql: string, params: readonly SqlValue[]): Promise<pg.QueryResult> {
  try {
    return await q.query(sql, params as SqlValue[]);
  } catch (err) {
    if (isConnectionError(err)) throw new StoreUnavailableError(err);
    throw err;
  }
}

class PgDb implements Db {
  readonly engine = "postgres" as const;
  constructor(private readonly pool: pg.Pool) {}
  async query<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return (await run(this.pool, sql, params)).rows as T[];
  }
  async exec(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return (await run(this.pool, sql, params)).rowCount ?? 0;
  }
  async transaction<T>(fn: (tx: Db) => Promise<T>, opts?: TransactionOptions): Promise<T> {
    const client = await connect(this.pool);
    const tx = new PgTx(client);
    try {
      await run(client, "BEGIN", []);
      if (opts?.durable === false) await run(client, "SET LOCAL synchronous_commit TO OFF", []);
      const result = await fn(tx);
      await run(client, "COMMIT", []);
      return result;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    } finally {
      // A handle that outlives its transaction must not run on a connection someone else now holds.
      tx.closed = true;
      client.release();
    }
  }
  async ping(): Promise<void> {
    await run(this.pool, "SELECT 1", []);
  }
  async close(): Promise<void> {
    await this.pool.end();
  }
}

class PgTx implements Db {
  readonly engine = "postgres" as const;
  closed = false;
  constructor(private readonly client: pg.PoolClient) {}
  async query<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    this.assertOpen();
    return (await run(this.client, sql, params)).rows as T[];
  }
  async exec(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    this.assertOpen();
    return (await run(this.client, sql, params)).rowCount ?? 0;
  }
  private assertOpen(): void {
    if (this.closed) throw new Error("transaction already finished");
  }
  async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    return fn(this);
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}
