// PostgreSQL only (no Redis): replicas tell each other through LISTEN/NOTIFY, each on a connection
// of its own. That connection is cut (its session terminated, as a failover or a pooler restart
// would). The reconcile interval is set far beyond the deadlines here, so only what
// docs/operations.md promises for this case can make them: the listener reconnects by itself and
// reads the change log on reconnecting, so a change notified while it was down still arrives.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstream } from "../../packages/server/test-support/upstream.js";
import {
  freshDatabase,
  newKey,
  type Replica,
  setUpGateway,
  skipReason,
  startReplica,
  stopAll,
  until,
} from "../replicas/harness.js";
import { CONFIG, SLACK_MS } from "./bounds.js";

const RECONCILE_MS = 60_000;

const skip = skipReason();
if (skip) console.warn(`[chaos] LISTEN connection tests skipped: ${skip}`);

describe.skipIf(skip !== undefined)("PostgreSQL LISTEN/NOTIFY only: a replica's listening connection is cut", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let observer: pg.Client;
  let a: Replica;
  let b: Replica;

  beforeAll(async () => {
    db = await freshDatabase();
    up = await startUpstream();
    observer = new pg.Client({ connectionString: db.url });
    await observer.connect();
    const at = new URL(db.url);
    const url = (name: string) =>
      db.urlVia(at.hostname, Number(at.port || 5432), { application_name: `kw-listen-${name}` });
    const env = {
      KEYWARD_RECONCILE_INTERVAL_MS: String(RECONCILE_MS),
      KEYWARD_MAX_STALENESS_MS: String(2 * RECONCILE_MS),
      KEYWARD_LOG_LEVEL: "info",
    };
    const start = (n: string) => startReplica(n, { ...env, KEYWARD_DATABASE_URL: url(n) }, { config: CONFIG });
    [a, b] = await Promise.all([start("a"), start("b")]);
    await setUpGateway(a, up.url);
  });

  afterAll(async () => {
    await stopAll();
    await observer?.end();
    await up?.close();
    await db?.drop();
  });

  it("operations.md 'The LISTEN connection lost': a change notified while it is down reaches the replica when it reconnects (backoff from 100 ms), long before reconcile_interval_ms; NOTIFY works again by itself", async () => {
    const missed = await newKey(a);
    const later = await newKey(a);
    for (const k of [missed, later]) expect(await b.call(k.secret)).toEqual({ status: 200, code: undefined });

    const { rows } = await observer.query(
      `SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'kw-listen-b' AND query LIKE 'LISTEN %'`,
    );
    expect(rows).toHaveLength(1);
    await observer.query("SELECT pg_terminate_backend($1)", [rows[0].pid]);
    await until(
      "b notices it lost its listener",
      async () => b.stderr().includes("change listener lost its PostgreSQL connection"),
      (v) => v,
      2000,
    );

    // Notified now, while B may not be listening: B still learns of it, far sooner than the interval.
    const res = await a.admin("POST", `/keys/${missed.id}/revoke`);
    expect(res.status).toBe(200);
    await until(
      "b refuses the key revoked while its listener was down",
      () => b.call(missed.secret),
      (v) => v.status === 401,
      1000 + SLACK_MS,
    );
    expect(await b.call(missed.secret)).toEqual({ status: 401, code: "key_revoked" });
    await until(
      "b listens again",
      async () => b.stderr().includes("change listener reconnected"),
      (v) => v,
      5000,
    );

    // And by NOTIFY again, not by the (one-minute) reconciliation.
    expect((await a.admin("POST", `/keys/${later.id}/revoke`)).status).toBe(200);
    await until(
      "b refuses the key revoked after it reconnected",
      () => b.call(later.secret),
      (v) => v.status === 401,
      2000,
    );
    for (const r of [a, b]) expect(r.child.exitCode).toBeNull();
  });
});
