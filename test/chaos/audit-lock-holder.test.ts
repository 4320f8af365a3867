// Issue 18, finding 2: a session that stopped while holding the audit append lock (a replica
// frozen by SIGSTOP or a GC pause, a network stall) must not wedge the other replicas. Here the
// holder is a raw PostgreSQL session of the test's, with the replicas' own
// idle_in_transaction_session_timeout, that takes the lock inside a transaction and goes idle: the
// deterministic form of "a replica stopped inside the lock" (replica-stopped.test.ts does it with
// a real replica and SIGSTOP). The replicas must fail closed within their bounds, count it, and
// recover by themselves once PostgreSQL has ended the holder's session.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstream } from "../../packages/server/test-support/upstream.js";
import {
  freshDatabase,
  newKey,
  type Replica,
  setUpGateway,
  skipReason,
  startReplicas,
  stopAll,
  until,
} from "../replicas/harness.js";
import { CONFIG, DATABASE, SLACK_MS, sleep, tokenRequest } from "./bounds.js";

/** The audit append lock (audit/audit-store.ts). */
const AUDIT_APPEND_LOCK = 7201002;
/** How long the holder's session lives idle in its transaction before PostgreSQL ends it. */
const HOLDER_IDLE_MS = 9000;

const skip = skipReason();
if (skip) console.warn(`[chaos] audit lock holder tests skipped: ${skip}`);

describe.skipIf(skip !== undefined)("a session stopped while holding the audit append lock", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let a: Replica;
  let b: Replica;
  let holder: pg.Client | undefined;

  beforeAll(async () => {
    db = await freshDatabase();
    up = await startUpstream();
    [a, b] = (await startReplicas(["a", "b"], { KEYWARD_DATABASE_URL: db.url }, { config: CONFIG })) as [
      Replica,
      Replica,
    ];
    await setUpGateway(a, up.url);
  });

  afterAll(async () => {
    await holder?.end().catch(() => {});
    await stopAll();
    await up?.close();
    await db?.drop();
  });

  it("operations.md 'Audit log cannot be written, or its writes stall' (the append lock held): tokens 503 audit_unavailable within audit_write_timeout_ms and revocations 503 within lock_timeout_ms, counted, the queue gauge live; all work again once PostgreSQL ends the holder, without a restart", async () => {
    // Keys made before the lock is taken (making one is an audited change); none used on A or B
    // yet, so each must mint and audit an upstream JWT for every one.
    const fresh = await Promise.all(Array.from({ length: 8 }, () => newKey(a)));
    const secret = (i: number) => fresh[i]?.secret as string;
    const revokeMe = await newKey(a);
    // An agent that reads a stored credential: each read is audited like a token.
    expect((await a.admin("PUT", "/credentials/chaos-secret", { value: "s3cr3t-value" })).status).toBe(201);
    expect((await a.admin("POST", "/agents", { name: "reader", upstream: up.url })).status).toBe(201);
    expect(
      (await a.admin("PUT", "/agents/reader/grants", { credentials: [{ name: "chaos-secret", mode: "read" }] })).status,
    ).toBe(200);
    const reader = await newKey(a, "agent:reader", []);
    const readCredentials = (r: Replica) =>
      fetch(`${r.url}/v1/credentials`, { headers: { authorization: `Bearer ${reader.secret}` } });
    for (const r of [a, b]) expect(await r.call(revokeMe.secret)).toEqual({ status: 200, code: undefined });
    const failuresBefore = new Map<Replica, number>();
    for (const r of [a, b]) failuresBefore.set(r, await r.metric("keyward_audit_failures_total"));

    holder = new pg.Client({ connectionString: db.url });
    holder.on("error", () => {}); // PostgreSQL ends this session: that is the point
    await holder.connect();
    await holder.query(`SET idle_in_transaction_session_timeout = ${HOLDER_IDLE_MS}`);
    await holder.query("BEGIN");
    await holder.query("SELECT pg_advisory_xact_lock($1)", [AUDIT_APPEND_LOCK]);
    const heldAt = Date.now();

    // On each replica the first token may go out before it can know (its record is queued, not
    // written: the documented "few of one batch"); once that write has failed, none does, and
    // each refusal comes within the audit write deadline.
    const escapedOn = new Map<Replica, Awaited<ReturnType<typeof tokenRequest>>>();
    for (const [r, first, next] of [
      [b, 0, 1],
      [a, 2, 3],
    ] as const) {
      const t = await tokenRequest(r.url, secret(first));
      expect([200, 503]).toContain(t.status);
      escapedOn.set(r, t);
      await until(
        `${r.name} counts the audit write that waits on the lock as failed`,
        () => r.metric("keyward_audit_failures_total"),
        (n) => n > (failuresBefore.get(r) ?? 0),
        DATABASE.lock_timeout_ms + DATABASE.audit_write_timeout_ms + SLACK_MS,
      );
      const { ms, value } = await r.timed(() => tokenRequest(r.url, secret(next)));
      expect(value).toMatchObject({ status: 503, code: "audit_unavailable" });
      expect(ms).toBeLessThan(DATABASE.audit_write_timeout_ms + SLACK_MS);
    }

    // A credential read is refused the same way: no value goes out unaudited.
    const credRead = await b.timed(() => readCredentials(b));
    expect(credRead.value.status).toBe(503);
    expect(((await credRead.value.json()) as { error: { code: string } }).error.code).toBe("audit_unavailable");
    expect(credRead.ms).toBeLessThan(DATABASE.audit_write_timeout_ms + SLACK_MS);

    // While a token waits for its record, the queue gauge is read live: the waiting record shows.
    const pending = tokenRequest(b.url, secret(4));
    await sleep(200);
    expect(await b.metric("keyward_audit_queue_length")).toBeGreaterThanOrEqual(1);
    expect(await b.metric("keyward_audit_oldest_pending_seconds")).toBeGreaterThan(0);
    const refused = await pending;
    expect(refused).toMatchObject({ status: 503, code: "audit_unavailable" });

    // A revocation waits on the lock for lock_timeout_ms at most, then answers a clear 503; the
    // key is not half-revoked.
    const revoke = await b.timed(() => b.admin("POST", `/keys/${revokeMe.id}/revoke`));
    expect(revoke.value.status).toBe(503);
    expect(revoke.value.body.error.code).toBe("audit_unavailable");
    expect(revoke.ms).toBeLessThan(DATABASE.lock_timeout_ms + SLACK_MS);
    expect((await a.admin("GET", `/keys/${revokeMe.id}`)).body.status).toBe("active");

    expect(await b.metric("keyward_audit_failures_total")).toBeGreaterThanOrEqual((failuresBefore.get(b) ?? 0) + 3);
    // Still inside the holder's life: everything above happened while the lock was held.
    expect(Date.now() - heldAt).toBeLessThan(HOLDER_IDLE_MS);

    // PostgreSQL ends the idle holder; the replicas recover without a restart.
    const again = await until(
      "b issues tokens again",
      () => tokenRequest(b.url, secret(5)),
      (v) => v.status === 200,
      HOLDER_IDLE_MS + 10_000,
    );
    expect(again.status).toBe(200);
    expect(Date.now() - heldAt).toBeGreaterThanOrEqual(HOLDER_IDLE_MS - 500);
    await until(
      "a issues tokens again",
      () => tokenRequest(a.url, secret(6)),
      (v) => v.status === 200,
      5000,
    );
    expect((await readCredentials(b)).status).toBe(200);
    const revoked = await b.admin("POST", `/keys/${revokeMe.id}/revoke`);
    expect(revoked.status).toBe(200);
    for (const r of [a, b]) {
      await until(
        `${r.name} refuses the revoked key`,
        () => r.call(revokeMe.secret),
        (v) => v.status === 401,
        3000,
      );
    }

    // No token went out unaudited without being counted: a first one that went out has its record
    // lost with its batch, and counted; none that was refused has a record claiming it was issued.
    const minted = await b.admin("GET", "/audit?action=token.mint&limit=1000");
    const recorded = new Set((minted.body.events as Array<{ request_id: string | null }>).map((e) => e.request_id));
    for (const r of [a, b]) {
      const t = escapedOn.get(r);
      const escaped = t?.status === 200 && !recorded.has(t.requestId) ? 1 : 0;
      expect(escaped).toBeLessThanOrEqual(
        (await r.metric("keyward_audit_failures_total")) - (failuresBefore.get(r) ?? 0),
      );
    }
    expect(refused.requestId && recorded.has(refused.requestId)).toBe(false);

    expect((await b.admin("GET", "/audit/verify")).body.ok).toBe(true);
    for (const r of [a, b]) expect(r.child.exitCode).toBeNull();
  });
});
