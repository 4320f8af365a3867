import pg from "pg";
import type { Db, Row, SqlValue, StoreOptions, TransactionOptions } from "./db.js";
import { DEFAULT_STORE_OPTIONS, StoreUnavailableError } from "./db.js";

// BIGINT (int8) columns hold epoch milliseconds and counters: well inside 2^53.
const types = {
  getTypeParser: (oid: number, format?: string) => {
    if (oid === 20) return (v: string) => Number(v);
    // biome-ignore lint/suspicious/noExplicitAny: pg's typing of getTypeParser is overloaded
    return (pg.types.getTypeParser as any)(oid, format);
  },
};

export interface PostgresOptions extends Partial<StoreOptions> {
  /** Schema to use (created if missing); lets tests run side by side in one database. */
  schema?: string;
  /** Pool size (tests); `poolSize` is the same setting. */
  max?: number;
  /**
   * No statement, lock, query or transaction limits: for migrations, which wait for another
   * replica's migration and must not be cut halfway. Connecting and idling inside a transaction
   * are still bounded.
   */
  unbounded?: boolean;
}

/**
 * PostgreSQL engine on a pg Pool, every call bounded (docs/operations.md, "Database timeouts"):
 *
 * - the server ends what runs too long: `statement_timeout`, `lock_timeout`, and
 *   `idle_in_transaction_session_timeout`, which frees the locks of a client that stopped inside a
 *   transaction (a frozen replica, a partition) so the other replicas are not wedged behind it;
 * - the client stops waiting on its own, because a stalled TCP connection yields no error at all:
 *   each query has a deadline, each transaction too, and a connection that missed one is destroyed
 *   (never handed out again, its late answer never read as another query's).
 */
export async function openPostgres(url: string, opts: PostgresOptions = {}): Promise<Db> {
  const schema = opts.schema;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error("invalid schema name");
  const o = resolveOptions(opts);
  const bounded = !opts.unbounded;
  // Set per session rather than as startup parameters, which poolers such as PgBouncer refuse.
  // Unbounded sessions (migrations) still end when idle inside a transaction: a replica frozen
  // mid-migration must not keep the others from starting.
  const sessionSql =
    `SET statement_timeout = ${bounded ? ms(o.statementTimeoutMs) : 0}; ` +
    `SET lock_timeout = ${bounded ? ms(o.lockTimeoutMs) : 0}; ` +
    `SET idle_in_transaction_session_timeout = ${ms(o.idleInTransactionTimeoutMs)}`;
  const pool = new pg.Pool({
    connectionString: url,
    max: o.poolSize,
    types,
    connectionTimeoutMillis: o.connectTimeoutMs,
    // Finds a peer that vanished (no FIN, no RST) on idle connections, after the kernel's probes.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: "keyward",
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
    // Awaited before the connection is handed out; bounded like any query (pg clears its connect
    // timer before this runs).
    onConnect: (c: pg.ClientBase) => run(c, sessionSql, [], o.connectTimeoutMs).then(() => {}),
  });
  // An idle client that loses its connection emits here; without a listener the process dies.
  pool.on("error", () => {});
  const db = new PgDb(pool, o, bounded);
  if (schema) {
    try {
      await db.exec(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
  }
  return db;
}

/** A whole, non-negative number of milliseconds: these go into SQL text. */
function ms(v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`invalid timeout: ${v}`);
  return v;
}

function resolveOptions(opts: PostgresOptions): StoreOptions {
  const o: StoreOptions = { ...DEFAULT_STORE_OPTIONS };
  for (const k of Object.keys(o) as (keyof StoreOptions)[]) {
    const v = opts[k];
    if (v !== undefined) o[k] = v;
  }
  if (opts.max !== undefined) o.poolSize = opts.max;
  if (o.queryTimeoutMs <= 0) o.queryTimeoutMs = o.statementTimeoutMs + 2000;
  return o;
}

const guarded = new WeakSet<pg.ClientBase>();
/** Connections that missed a deadline: destroyed, and removed from the pool on release. */
const broken = new WeakSet<pg.ClientBase>();

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

/** Cuts the socket: a stalled connection would otherwise hold its late answer for the next query. */
function destroy(client: pg.ClientBase): void {
  broken.add(client);
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/** A deadline passed on the client side: the database said nothing in time. */
export class StoreTimeoutError extends Error {
  readonly code = "KW_STORE_TIMEOUT";
  constructor(what: string, ms: number) {
    super(`${what} got no answer within ${ms} ms`);
    this.name = "StoreTimeoutError";
  }
}

// Connection failures, and the server's own timeouts: the store is unavailable (503, retry), not broken.
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "57P01", // admin_shutdown (terminated)
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "57014", // query_canceled: statement_timeout
  "55P03", // lock_not_available: lock_timeout
  "25P03", // idle_in_transaction_session_timeout
]);

function isUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && (UNAVAILABLE_CODES.has(code) || code.startsWith("08"))) return true;
  return (
    err instanceof Error &&
    /Connection terminated|timeout exceeded when trying to connect|not queryable|Query read timeout/.test(err.message)
  );
}

/** One statement on `client`, failing with StoreUnavailableError when no answer comes within `ms`. */
async function run(
  client: pg.ClientBase,
  sql: string,
  params: readonly SqlValue[],
  ms: number,
): Promise<pg.QueryResult> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      destroy(client);
      reject(new StoreUnavailableError(new StoreTimeoutError("query", ms)));
    }, ms);
  });
  try {
    return await Promise.race([client.query(sql, params as SqlValue[]), deadline]);
  } catch (err) {
    if (err instanceof StoreUnavailableError) throw err;
    if (isUnavailable(err)) throw new StoreUnavailableError(err);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

class PgDb implements Db {
  readonly engine = "postgres" as const;
  constructor(
    private readonly pool: pg.Pool,
    private readonly o: StoreOptions,
    private readonly bounded: boolean,
  ) {}

  private get queryMs(): number {
    // Migrations (unbounded) may run long statements; a dead peer is still found by TCP keepalive.
    return this.bounded ? this.o.queryTimeoutMs : 2 ** 31 - 1;
  }

  /** One statement on a pooled connection, returned to the pool unless it missed its deadline. */
  private async once(sql: string, params: readonly SqlValue[], ms = this.queryMs): Promise<pg.QueryResult> {
    const client = await connect(this.pool);
    try {
      return await run(client, sql, params, ms);
    } finally {
      client.release(broken.has(client) ? true : undefined);
    }
  }

  async query<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return (await this.once(sql, params)).rows as T[];
  }
  async exec(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return (await this.once(sql, params)).rowCount ?? 0;
  }
  async transaction<T>(fn: (tx: Db) => Promise<T>, opts?: TransactionOptions): Promise<T> {
    const client = await connect(this.pool);
    const tx = new PgTx(client, this.queryMs);
    // The whole transaction has a deadline too: past it the connection is cut, so the server rolls
    // back (at once, or after idle_in_transaction_session_timeout if the network is what stalled).
    let timer: NodeJS.Timeout | undefined;
    const deadline = this.bounded
      ? new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            tx.closed = true;
            destroy(client);
            reject(new StoreUnavailableError(new StoreTimeoutError("transaction", this.o.transactionTimeoutMs)));
          }, this.o.transactionTimeoutMs);
        })
      : undefined;
    const body = async (): Promise<T> => {
      await tx.run("BEGIN");
      if (opts?.durable === false) await tx.run("SET LOCAL synchronous_commit TO OFF");
      const result = await fn(tx);
      await tx.run("COMMIT");
      return result;
    };
    try {
      const work = body();
      if (!deadline) return await work;
      work.catch(() => {}); // settled by the race; a late rejection is not unhandled
      return await Promise.race([work, deadline]);
    } catch (err) {
      // A connection that missed a deadline is gone: the server rolls back on its own.
      if (!broken.has(client)) await run(client, "ROLLBACK", [], this.queryMs).catch(() => destroy(client));
      throw err;
    } finally {
      clearTimeout(timer);
      // A handle that outlives its transaction must not run on a connection someone else now holds.
      tx.closed = true;
      client.release(broken.has(client) ? true : undefined);
    }
  }
  async ping(): Promise<void> {
    // /readyz: answered within the connect timeout whatever the database does.
    const ms = this.o.connectTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreUnavailableError(new StoreTimeoutError("ping", ms))), ms);
    });
    const probe = this.once("SELECT 1", [], ms);
    probe.catch(() => {});
    try {
      await Promise.race([probe, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
  async close(): Promise<void> {
    // pool.end() waits for each connection's goodbye, which a stalled peer never acknowledges.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.pool.end(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.o.connectTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }
}

class PgTx implements Db {
  readonly engine = "postgres" as const;
  closed = false;
  constructor(
    private readonly client: pg.PoolClient,
    private readonly queryMs: number,
  ) {}
  run(sql: string, params: readonly SqlValue[] = []): Promise<pg.QueryResult> {
    this.assertOpen();
    return run(this.client, sql, params, this.queryMs);
  }
  async query<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return (await this.run(sql, params)).rows as T[];
  }
  async exec(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return (await this.run(sql, params)).rowCount ?? 0;
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
