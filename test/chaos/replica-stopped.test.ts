// One replica stopped (SIGSTOP: a GC pause, a frozen VM, a debugger) in the middle of an admin
// change, while its transaction holds the audit append lock. The other replica must not hang behind
// it: tokens and revocations fail closed within their bounds, and work again once PostgreSQL has
// ended the frozen session (idle_in_transaction_timeout_ms), while the frozen replica is still
// stopped. When it resumes it recovers by itself, and honours what changed meanwhile.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstream } from "../../packages/server/test-support/upstream.js";
import {
  freshDatabase,
  newKey,
  type Replica,
  redisUrl,
  setUpGateway,
  skipReason,
  startReplica,
  stopAll,
  until,
} from "../replicas/harness.js";
import { DATABASE, SLACK_MS, sleep, tokenRequest } from "./bounds.js";

const AUDIT_APPEND_LOCK = 7201002;
const RECONCILE_MS = 300;
/** Long enough for B's checks to run while A's session still holds the lock, on a loaded machine. */
const IDLE_IN_TRANSACTION_MS = 6000;
const CONFIG = { database: { ...DATABASE, idle_in_transaction_timeout_ms: IDLE_IN_TRANSACTION_MS } };

const skip = skipReason({ redis: true });
if (skip) console.warn(`[chaos] stopped replica tests skipped: ${skip}`);

describe.skipIf(skip !== undefined)("a replica stopped inside a transaction that holds the audit lock", () => {
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
    const env = { KEYWARD_REDIS_URL: redisUrl as string, KEYWARD_RECONCILE_INTERVAL_MS: String(RECONCILE_MS) };
    const at = new URL(db.url);
    const url = (name: string) =>
      db.urlVia(at.hostname, Number(at.port || 5432), { application_name: `kw-chaos-${name}` });
    const start = (n: string) => startReplica(n, { ...env, KEYWARD_DATABASE_URL: url(n) }, { config: CONFIG });
    [a, b] = await Promise.all([start("a"), start("b")]);
    await setUpGateway(b, up.url);
    // The agent A's changes go to: not the one B's requests use, whose row they would lock.
    expect((await b.admin("POST", "/agents", { name: "busy", upstream: up.url })).status).toBe(201);
  });

  afterAll(async () => {
    await stopAll();
    await observer?.end();
    await up?.close();
    await db?.drop();
  });

  /**
   * True when a session of replica A holds the audit append lock and waits for A's next statement
   * ("idle in transaction"): with A stopped, it holds it until PostgreSQL ends it. (A session still
   * running a statement A sent before it stopped, a COMMIT say, would release it by itself.)
   */
  async function aHoldsTheLock(): Promise<boolean> {
    const { rows } = await observer.query(
      `SELECT s.application_name FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.objid = $1 AND l.granted AND s.datname = current_database()
          AND s.state = 'idle in transaction'`,
      [AUDIT_APPEND_LOCK],
    );
    return rows.some((r: { application_name: string }) => r.application_name === "kw-chaos-a");
  }

  it("operations.md 'A replica frozen inside a transaction': the other answers 503 within lock_timeout_ms and audit_write_timeout_ms, works again once PostgreSQL ends the frozen session (idle_in_transaction_timeout_ms), and the frozen one recovers when resumed", async () => {
    const fresh = await Promise.all(Array.from({ length: 4 }, () => newKey(b)));
    const revokeMe = await newKey(b);
    for (const r of [a, b]) expect((await r.call(revokeMe.secret)).status).toBe(200);
    const failuresBefore = await b.metric("keyward_audit_failures_total");

    // A is kept busy with admin changes (each takes the audit lock inside its transaction) and
    // stopped until it is caught holding the lock. They change another agent than the one B
    // serves: a frozen change also holds its row, and B's load of that agent would wait on it
    // (for lock_timeout_ms, then 503; agents-store reads FOR UPDATE even outside a transaction).
    let busy = true;
    const statuses: number[] = [];
    const workers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; busy; i++) {
        const res = await a.admin("PATCH", "/agents/busy", { description: `w${w} ${i}` }).catch(() => undefined);
        if (res) statuses.push(res.status);
      }
    });
    let caught = false;
    for (let attempt = 0; attempt < 300 && !caught; attempt++) {
      a.child.kill("SIGSTOP");
      await sleep(30);
      caught = await aHoldsTheLock();
      if (!caught) {
        a.child.kill("SIGCONT");
        await sleep(5 + (attempt % 7) * 3);
      }
    }
    busy = false;
    expect(caught).toBe(true);
    const stoppedAt = Date.now();

    try {
      // B: the first token may go out before B knows (the documented few of one batch); then none.
      const first = await tokenRequest(b.url, fresh[0]?.secret as string);
      expect([200, 503]).toContain(first.status);
      await until(
        "b counts the audit write stuck behind the frozen replica as failed",
        () => b.metric("keyward_audit_failures_total"),
        (n) => n > failuresBefore,
        DATABASE.lock_timeout_ms + DATABASE.audit_write_timeout_ms + SLACK_MS,
      );
      const next = await b.timed(() => tokenRequest(b.url, fresh[1]?.secret as string));
      expect(next.value).toMatchObject({ status: 503, code: "audit_unavailable" });
      expect(next.ms).toBeLessThan(DATABASE.audit_write_timeout_ms + SLACK_MS);
      const revoke = await b.timed(() => b.admin("POST", `/keys/${revokeMe.id}/revoke`));
      expect(revoke.value.status).toBe(503);
      expect(revoke.ms).toBeLessThan(DATABASE.lock_timeout_ms + SLACK_MS);
      expect(await aHoldsTheLock()).toBe(true);

      // PostgreSQL ends A's session once it has been idle in its transaction for the timeout:
      // B recovers while A is still stopped, without a restart.
      await until(
        "b revokes again",
        () => b.admin("POST", `/keys/${revokeMe.id}/revoke`),
        (r) => r.status === 200,
        IDLE_IN_TRANSACTION_MS + 2 * SLACK_MS,
      );
      expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(IDLE_IN_TRANSACTION_MS - 1000);
      expect(await aHoldsTheLock()).toBe(false);
      expect(await b.call(revokeMe.secret)).toEqual({ status: 401, code: "key_revoked" });
      expect((await tokenRequest(b.url, fresh[2]?.secret as string)).status).toBe(200);
      expect(a.child.exitCode).toBeNull();
    } finally {
      a.child.kill("SIGCONT");
    }

    // A resumes: its transaction's session is gone, so that change failed (503, no half-write),
    // and it serves again by itself, honouring the revocation made while it was stopped.
    await Promise.all(workers);
    // The change caught inside the lock failed cleanly (its session was ended): 503, never a 500.
    expect(statuses.filter((st) => st !== 200 && st !== 503)).toEqual([]);
    expect(statuses).toContain(503);
    await until(
      "a refuses the key revoked while it was stopped",
      () => a.call(revokeMe.secret),
      (v) => v.status === 401,
      RECONCILE_MS + SLACK_MS,
    );
    await until(
      "a makes admin changes again",
      () => a.admin("PATCH", "/agents/echo", { description: "after" }),
      (r) => r.status === 200,
      5000,
    );
    await until(
      "a issues upstream JWTs again",
      () => tokenRequest(a.url, fresh[3]?.secret as string),
      (v) => v.status === 200,
      5000,
    );
    expect((await fetch(`${a.url}/readyz`)).status).toBe(200);
    expect((await b.admin("GET", "/audit/verify")).body.ok).toBe(true);
    for (const r of [a, b]) expect(r.child.exitCode).toBeNull();
  });
});
