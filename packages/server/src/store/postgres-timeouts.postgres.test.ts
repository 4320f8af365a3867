import { randomBytes, randomInt } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Relay, startRelay } from "../../test-support/tcp-relay.js";
import { type Db, StoreUnavailableError } from "./db.js";
import { openPostgres, type PostgresOptions } from "./postgres.js";

// Every call to PostgreSQL is bounded (docs/operations.md, "Database timeouts"): the server ends
// what runs or waits too long, and the client stops waiting on a connection that went silent and
// drops it. Each failure is a StoreUnavailableError (503 store_unavailable), within its bound.
const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
if (!pgUrl) console.warn("[postgres-timeouts] skipped: KEYWARD_TEST_DATABASE_URL is not set");

const LIMITS = {
  connectTimeoutMs: 500,
  statementTimeoutMs: 400,
  lockTimeoutMs: 200,
  idleInTransactionTimeoutMs: 400,
  queryTimeoutMs: 700,
  transactionTimeoutMs: 1500,
} satisfies PostgresOptions;
const SLACK_MS = 800;

async function failsWithin<T>(ms: number, work: () => Promise<T>): Promise<StoreUnavailableError> {
  const started = performance.now();
  const err = await work().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreUnavailableError);
  expect(performance.now() - started).toBeLessThan(ms + SLACK_MS);
  return err as StoreUnavailableError;
}

describe.skipIf(!pgUrl)("PostgreSQL store: every call bounded", () => {
  const schema = `kwt_to_${randomBytes(5).toString("hex")}`;
  let admin: pg.Client;
  let db: Db;
  const dbs: Db[] = [];
  const open = async (opts: PostgresOptions, url = pgUrl as string) => {
    const d = await openPostgres(url, { schema, ...LIMITS, ...opts });
    dbs.push(d);
    return d;
  };

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    db = await open({ poolSize: 3 });
  });
  afterAll(async () => {
    for (const d of dbs) await d.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  it("sets statement, lock and idle-in-transaction timeouts on every pooled session", async () => {
    const rows = await Promise.all(
      Array.from({ length: 3 }, () =>
        db.transaction(async (tx) => {
          const [s] = await tx.query<{ s: string; l: string; i: string; app: string }>(
            `SELECT current_setting('statement_timeout') AS s, current_setting('lock_timeout') AS l,
                    current_setting('idle_in_transaction_session_timeout') AS i,
                    current_setting('application_name') AS app`,
          );
          await new Promise((r) => setTimeout(r, 20)); // hold this connection: the others open their own
          return s;
        }),
      ),
    );
    expect(rows).toEqual(Array(3).fill({ s: "400ms", l: "200ms", i: "400ms", app: "keyward" }));
  });

  it("a lock held elsewhere is waited for lock_timeout_ms at most", async () => {
    const key = randomInt(1, 2 ** 31 - 1);
    await admin.query("BEGIN");
    await admin.query("SELECT pg_advisory_xact_lock($1)", [key]);
    try {
      const err = await failsWithin(LIMITS.lockTimeoutMs, () =>
        db.transaction((tx) => tx.query("SELECT pg_advisory_xact_lock($1)", [key])),
      );
      expect((err.cause as { code?: string }).code).toBe("55P03");
    } finally {
      await admin.query("ROLLBACK");
    }
    // Freed, the same lock is taken at once.
    await db.transaction((tx) => tx.query("SELECT pg_advisory_xact_lock($1)", [key]));
  });

  it("a statement runs statement_timeout_ms at most", async () => {
    const err = await failsWithin(LIMITS.statementTimeoutMs, () => db.query("SELECT pg_sleep(5)"));
    expect((err.cause as { code?: string }).code).toBe("57014");
    expect(await db.query("SELECT 1 AS one")).toEqual([{ one: 1 }]);
  });

  it("a transaction left idle longer than idle_in_transaction_timeout_ms is ended by the server", async () => {
    await failsWithin(LIMITS.idleInTransactionTimeoutMs + 300, () =>
      db.transaction(async (tx) => {
        await tx.query("SELECT 1");
        await new Promise((r) => setTimeout(r, LIMITS.idleInTransactionTimeoutMs + 300));
        return tx.query("SELECT 2");
      }),
    );
    expect(await db.query("SELECT 3 AS three")).toEqual([{ three: 3 }]);
  });

  it("a transaction is abandoned after transaction_timeout_ms, whatever its body does", async () => {
    await failsWithin(LIMITS.transactionTimeoutMs, () =>
      db.transaction(async (tx) => {
        // Never idle long enough for the server's timer: the client's deadline is what ends it.
        for (;;) await tx.query("SELECT pg_sleep(0.05)");
      }),
    );
    expect(await db.query("SELECT 4 AS four")).toEqual([{ four: 4 }]);
  });

  describe("over a connection that goes silent", () => {
    let relay: Relay;
    let relayUrl: string;
    let quiet: Db;

    beforeAll(async () => {
      const target = new URL(pgUrl as string);
      relay = await startRelay({ host: target.hostname, port: Number(target.port || 5432) });
      target.hostname = "127.0.0.1";
      target.port = String(relay.port);
      relayUrl = target.toString();
      quiet = await open({ poolSize: 2 }, relayUrl);
      expect(await quiet.query("SELECT 1 AS one")).toEqual([{ one: 1 }]);
    });
    afterAll(async () => {
      relay.resume();
      await relay.close();
    });

    it("fails a query after query_timeout_ms, /readyz's ping after connect_timeout_ms, and drops the silent connection", async () => {
      relay.pause();
      try {
        const err = await failsWithin(LIMITS.queryTimeoutMs, () => quiet.query("SELECT 'late' AS v"));
        expect((err.cause as Error).name).toBe("StoreTimeoutError");
        await failsWithin(LIMITS.connectTimeoutMs, () => quiet.ping());
        await failsWithin(LIMITS.queryTimeoutMs, () => quiet.transaction((tx) => tx.query("SELECT 1")));
        await failsWithin(LIMITS.connectTimeoutMs + LIMITS.queryTimeoutMs, () => quiet.exec("SELECT 1"));
      } finally {
        relay.resume();
      }
      // Back: new connections answer, and no late answer of a dropped one is read as another's.
      for (let i = 0; i < 4; i++) expect(await quiet.query("SELECT $1::int AS n", [i])).toEqual([{ n: i }]);
      await quiet.ping();
    });

    it("closes within the connect timeout even when the peer never answers", async () => {
      const doomed = await openPostgres(relayUrl, { schema, ...LIMITS, poolSize: 1 });
      await doomed.query("SELECT 1");
      relay.pause();
      try {
        const started = performance.now();
        await doomed.close();
        expect(performance.now() - started).toBeLessThan(LIMITS.connectTimeoutMs + SLACK_MS);
      } finally {
        relay.resume();
      }
    });
  });
});
