// Replica C loses PostgreSQL (a relay between them) while A keeps it, in two ways:
// - stopped: the relay is cut, connections are refused and closed, errors come at once;
// - stalled: the relay goes silent (test/chaos): no error, no close, just no answer, which only
//   the timeouts of docs/operations.md ("Database timeouts") turn into errors.
// Either way C goes on verifying the keys it has cached, but only for max_staleness_ms; what needs
// the store answers 503 store_unavailable, what must be audited 503 audit_unavailable, each within
// its bound; admin writes leave nothing behind; a revocation made on A still reaches C through
// Redis and is never answered 200; and everything comes back without a restart.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Relay, startRelay } from "../../packages/server/test-support/tcp-relay.js";
import { startUpstream } from "../../packages/server/test-support/upstream.js";
import { CONFIG, DATABASE, SLACK_MS, tokenRequest } from "../chaos/bounds.js";
import {
  freshDatabase,
  newKey,
  pgTarget,
  type Replica,
  redisUrl,
  setUpGateway,
  skipReason,
  startReplica,
  stopAll,
  until,
} from "./harness.js";

const RECONCILE_MS = 200;

export function postgresOutageCases(fault: "stopped" | "stalled"): void {
  const skip = skipReason({ redis: true });
  if (skip) console.warn(`[replicas] PostgreSQL ${fault} tests skipped: ${skip}`);
  const label =
    fault === "stopped"
      ? "a replica cut off from PostgreSQL (connections refused and closed)"
      : "a replica whose PostgreSQL went silent (stalled: no answer, no error, no close)";

  // Stalled, every step waits for a timeout: the staleness bound leaves room for the steps that
  // need C's caches (the message of a revocation, tokens for a cached key) to run before it.
  const MAX_STALENESS_MS = fault === "stopped" ? 2500 : 8000;

  describe.skipIf(skip !== undefined)(label, () => {
    let db: Awaited<ReturnType<typeof freshDatabase>>;
    let up: Awaited<ReturnType<typeof startUpstream>>;
    let relay: Relay;
    let a: Replica;
    let c: Replica;
    const down = () => (fault === "stopped" ? relay.cut() : relay.pause());
    const back = () => (fault === "stopped" ? relay.restore() : relay.resume());

    beforeAll(async () => {
      // A database of its own: a stalled session may hold the audit append lock, which is per database.
      db = await freshDatabase();
      up = await startUpstream();
      relay = await startRelay(pgTarget());
      const env = {
        KEYWARD_REDIS_URL: redisUrl as string,
        KEYWARD_RECONCILE_INTERVAL_MS: String(RECONCILE_MS),
        KEYWARD_MAX_STALENESS_MS: String(MAX_STALENESS_MS),
      };
      [a, c] = await Promise.all([
        startReplica("a", { ...env, KEYWARD_DATABASE_URL: db.url }, { config: CONFIG }),
        startReplica("c", { ...env, KEYWARD_DATABASE_URL: db.urlVia("127.0.0.1", relay.port) }, { config: CONFIG }),
      ]);
      await setUpGateway(a, up.url);
      for (const name of ["other", "third", "fourth"]) {
        expect((await a.admin("POST", "/agents", { name, upstream: up.url })).status).toBe(201);
      }
    });

    afterAll(async () => {
      await stopAll();
      await relay?.close();
      await up?.close();
      await db?.drop();
    });

    it(`operations.md 'PostgreSQL unreachable' (${fault}): cached keys verify for max_staleness_ms, the rest gets 503 store_unavailable or audit_unavailable within its bound, /readyz 503, a revocation on A is never answered 200 on C; all back without a restart`, async () => {
      const cached = await newKey(a);
      const revokedMeanwhile = await newKey(a);
      const unseen = await newKey(a);
      // A key of its own for upstream JWTs: a refused one drops every JWT cached for its key.
      const minting = await newKey(a);
      for (const k of [cached, revokedMeanwhile, minting]) expect((await c.call(k.secret)).status).toBe(200);
      // C caches the other agents, not yet an upstream JWT of `minting` for them.
      for (const agent of ["other", "third", "fourth"]) expect((await c.call(cached.secret, agent)).status).toBe(200);
      const auditBefore = (await a.admin("GET", "/audit/verify")).body.count as number;
      const failuresBefore = await c.metric("keyward_audit_failures_total");
      // Nothing of C's in flight when it loses the store (its records of the calls above are written).
      await until(
        "c has written its audit records",
        () => c.metric("keyward_audit_queue_length"),
        (n) => n === 0,
        3000,
      );

      await down();
      const downAt = Date.now();
      try {
        // Memory only: the cached key (and its upstream JWT) still pass; the process is up.
        expect(await c.call(cached.secret)).toEqual({ status: 200, code: undefined });
        expect((await fetch(`${c.url}/healthz`)).status).toBe(200);

        // Revoked on A: the message still reaches C through Redis, and C does not fall back on
        // what it had cached (it cannot read the key again, so: 503, not 200).
        expect((await a.admin("POST", `/keys/${revokedMeanwhile.id}/revoke`)).status).toBe(200);
        const afterRevoke = await until(
          "c stops admitting the key revoked on a",
          () => c.call(revokedMeanwhile.secret),
          (v) => v.status !== 200,
          2000 + DATABASE.query_timeout_ms,
        );
        expect(afterRevoke).toEqual({ status: 503, code: "store_unavailable" });
        // That was the message, not the staleness bound: the other cached key still passes.
        expect(await c.call(cached.secret)).toEqual({ status: 200, code: undefined });

        // A new upstream JWT must be audited. The first may go out before C knows (its record is
        // queued: the documented few of one batch, counted if lost); once the write has failed or
        // passed its deadline, none does.
        const first = await tokenRequest(c.url, minting.secret, "other");
        expect([200, 503]).toContain(first.status);
        if (fault === "stalled" && first.status === 200) {
          // The write of its record hangs: the queue gauge, read when scraped, shows it waiting.
          expect(await c.metric("keyward_audit_queue_length")).toBeGreaterThanOrEqual(1);
        }
        await until(
          "c counts the audit write it could not make",
          () => c.metric("keyward_audit_failures_total"),
          (n) => n > failuresBefore,
          DATABASE.audit_write_timeout_ms + SLACK_MS,
        );
        const next = await c.timed(() => tokenRequest(c.url, minting.secret, "third"));
        expect(next.value).toMatchObject({ status: 503, code: "audit_unavailable" });
        expect(next.ms).toBeLessThan(DATABASE.audit_write_timeout_ms + SLACK_MS);

        // What needs the store answers 503 within its bound: /readyz, a key never seen, admin writes
        // (which leave nothing behind).
        const ready = await c.timed(() => fetch(`${c.url}/readyz`));
        expect(ready.value.status).toBe(503);
        expect(ready.ms).toBeLessThan(DATABASE.connect_timeout_ms + SLACK_MS);
        const miss = await c.timed(() => c.call(unseen.secret));
        expect(miss.value).toEqual({ status: 503, code: "store_unavailable" });
        expect(miss.ms).toBeLessThan(DATABASE.query_timeout_ms + DATABASE.connect_timeout_ms + SLACK_MS);
        const write = await c.timed(() => c.admin("POST", "/agents", { name: "half", upstream: up.url }));
        expect(write.value.status).toBe(503);
        expect(write.value.body.error.code).toBe("store_unavailable");
        expect(write.ms).toBeLessThan(DATABASE.transaction_timeout_ms + SLACK_MS);
        expect((await c.admin("POST", `/keys/${cached.id}/revoke`)).status).toBe(503);

        // The bound: past max_staleness_ms without reading the change log, C drops its caches.
        const bounded = await until(
          "c stops trusting its cache",
          () => c.call(cached.secret),
          (v) => v.status !== 200,
          MAX_STALENESS_MS + 4 * RECONCILE_MS + DATABASE.query_timeout_ms + SLACK_MS,
        );
        expect(bounded).toEqual({ status: 503, code: "store_unavailable" });
        expect(Date.now() - downAt).toBeLessThan(
          MAX_STALENESS_MS + 4 * RECONCILE_MS + 2 * DATABASE.query_timeout_ms + SLACK_MS,
        );
        expect(await c.call(revokedMeanwhile.secret)).toEqual({ status: 503, code: "store_unavailable" });
      } finally {
        await back();
      }

      // Back by itself: the cached key passes again, the revoked one stays refused.
      await until(
        "c verifies again",
        () => c.call(cached.secret),
        (v) => v.status === 200,
        10_000,
      );
      expect(await c.call(revokedMeanwhile.secret)).toEqual({ status: 401, code: "key_revoked" });
      expect((await fetch(`${c.url}/readyz`)).status).toBe(200);
      await until(
        "c audits and issues upstream JWTs again",
        () => tokenRequest(c.url, minting.secret, "fourth"),
        (v) => v.status === 200,
        5000,
      );
      expect((await a.admin("GET", "/agents/half")).status).toBe(404);
      expect((await a.admin("GET", `/keys/${cached.id}`)).body.status).toBe("active");
      const verify = (await a.admin("GET", "/audit/verify")).body;
      expect(verify.ok).toBe(true);
      // The revocation made on A during the outage landed with its record; the chain is intact.
      expect(verify.count).toBeGreaterThanOrEqual(auditBefore + 1);
      const onC = await c.admin("POST", "/agents", { name: "after", upstream: up.url });
      expect(onC.status).toBe(201);
      expect(c.child.exitCode).toBeNull();
    });
  });
}
