// Redis, the replicas' messenger and the home of shared rate limits, fails mid-test and comes back:
// - stopped: the redis-server is killed (connections refused, counters lost) and started again;
// - stalled: a relay in front of it goes silent (test/chaos): no error, no close, no answer.
// Either way, as docs/operations.md ("Redis unreachable") says: keys with a rate limit get 503
// rate_limit_unavailable (at once when the connection is down, within 500 ms when Redis hangs),
// keys without are unaffected; revocations still commit, say `Keyward-Propagation: pending`, and
// reach every replica by reconciliation within the interval; nothing revoked is admitted
// afterwards; and the replicas go back to pub/sub and shared limits by themselves.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_LEASE_SETTINGS, maxLease } from "../../packages/server/src/limits/lease-sizing.js";
import { type Relay, startRelay } from "../../packages/server/test-support/tcp-relay.js";
import { startUpstream } from "../../packages/server/test-support/upstream.js";
import { SLACK_MS } from "../chaos/bounds.js";
import {
  freshSchema,
  newKey,
  type Replica,
  setUpGateway,
  skipReason,
  startRedisServer,
  startReplicas,
  stopAll,
  stopRedisServers,
  until,
} from "./harness.js";

const RECONCILE_MS = 300;
/** docs/operations.md: a hung Redis is detected within 500 ms (the limits connection's command timeout). */
const REDIS_HANG_MS = 500;
/** The publishing connection's command timeout: a change is pending after it at most. */
const PUBLISH_TIMEOUT_MS = 1000;

export function redisOutageCases(fault: "stopped" | "stalled"): void {
  const skip = skipReason({ redisServer: true });
  if (skip) console.warn(`[replicas] Redis ${fault} tests skipped: ${skip}`);
  const label =
    fault === "stopped"
      ? "three replicas, Redis stopped and restarted"
      : "three replicas, Redis stalled (no answer, no error, no close) and back";

  describe.skipIf(skip !== undefined)(label, () => {
    let schema: Awaited<ReturnType<typeof freshSchema>>;
    let up: Awaited<ReturnType<typeof startUpstream>>;
    let redis: Awaited<ReturnType<typeof startRedisServer>>;
    let relay: Relay | undefined;
    let replicas: Replica[];
    let a: Replica;

    beforeAll(async () => {
      schema = await freshSchema();
      up = await startUpstream();
      redis = await startRedisServer();
      const port = Number(new URL(redis.url).port);
      if (fault === "stalled") relay = await startRelay({ host: "127.0.0.1", port });
      replicas = await startReplicas(["a", "b", "c"], {
        KEYWARD_DATABASE_URL: schema.url,
        KEYWARD_REDIS_URL: relay ? `redis://127.0.0.1:${relay.port}` : redis.url,
        KEYWARD_RECONCILE_INTERVAL_MS: String(RECONCILE_MS),
        KEYWARD_MAX_STALENESS_MS: "30000",
        KEYWARD_LOG_LEVEL: "info",
      });
      a = replicas[0] as Replica;
      await setUpGateway(a, up.url);
    });

    afterAll(async () => {
      await stopAll();
      await relay?.close();
      await stopRedisServers();
      await up?.close();
      await schema?.drop();
    });

    const refusedEverywhere = async (secret: string, code: string, deadlineMs: number) => {
      for (const r of replicas) {
        await until(
          `${r.name} refuses with ${code}`,
          () => r.call(secret),
          (v) => v.status === 401 && v.code === code,
          deadlineMs,
        );
      }
    };

    it(`operations.md 'Redis unreachable' (${fault}): limited keys 503 rate_limit_unavailable within the bound, others unaffected; revocations pending, then everywhere by reconciliation; pub/sub and limits resume by themselves`, async () => {
      const before = await newKey(a);
      const during = await newKey(a);
      const frozen = await newKey(a);
      const after = await newKey(a);
      const limited = await newKey(a, "consumer:c", ["agent:*"], { rate_limit: { limit: 1000, window_s: 60 } });
      for (const k of [before, during, frozen, after, limited]) {
        for (const r of replicas) expect((await r.call(k.secret)).status).toBe(200);
      }

      const res = await a.admin("POST", `/keys/${before.id}/revoke`);
      expect(res.headers.get("keyward-propagation")).toBeNull();
      await refusedEverywhere(before.secret, "key_revoked", 2000);

      if (fault === "stopped") await redis.kill();
      else relay?.pause();

      // Limits need Redis: refused (fallback closed) once the permits a replica already leased are
      // used (at most one lease: operations.md), each answer within the bound; keys without limits pass.
      const leaseAtMost = maxLease(1000, { ...DEFAULT_LEASE_SETTINGS });
      for (const r of replicas) {
        let admitted = 0;
        for (;;) {
          const answer = await r.timed(() => r.call(limited.secret));
          expect(answer.ms).toBeLessThan(REDIS_HANG_MS + SLACK_MS);
          if (answer.value.status !== 200) {
            expect(answer.value).toEqual({ status: 503, code: "rate_limit_unavailable" });
            break;
          }
          admitted += 1;
          expect(admitted).toBeLessThanOrEqual(leaseAtMost);
        }
        expect(await r.call(after.secret)).toEqual({ status: 200, code: undefined });
      }

      // Committed and durable, but the other replicas could not be told: the response says so.
      const revoked = await a.timed(() => a.admin("POST", `/keys/${during.id}/revoke`));
      expect(revoked.value.status).toBe(200);
      expect(revoked.value.headers.get("keyward-propagation")).toBe("pending");
      expect(revoked.ms).toBeLessThan(PUBLISH_TIMEOUT_MS + SLACK_MS);
      expect(await a.call(during.secret)).toEqual({ status: 401, code: "key_revoked" });
      const froze = await a.admin("POST", `/keys/${frozen.id}/freeze`);
      expect(froze.status).toBe(200);
      expect(froze.headers.get("keyward-propagation")).toBe("pending");
      // Reconciliation runs every 300 ms; allow for two rounds and a slow machine.
      await refusedEverywhere(during.secret, "key_revoked", 5 * RECONCILE_MS + 1000);
      await refusedEverywhere(frozen.secret, "key_frozen", 5 * RECONCILE_MS + 1000);

      if (fault === "stopped") await redis.start();
      else relay?.resume();

      // Recovery needs nothing from us: a harmless change stops being "pending" once the replicas
      // have reconnected (or their stalled connections answer again).
      await until(
        "admin changes publish again",
        () => a.admin("PATCH", "/agents/echo", { description: `probe ${Date.now()}` }),
        (r) => r.status === 200 && r.headers.get("keyward-propagation") === null,
        10_000,
      );
      if (fault === "stopped") {
        // Every replica has resubscribed by itself (each logs it once per outage).
        for (const r of replicas) {
          await until(
            `${r.name} resubscribed`,
            async () => r.stderr().includes('"connection":"sub","msg":"redis reachable again"'),
            (v) => v,
            10_000,
          );
        }
      }
      for (const r of replicas) {
        await until(
          `${r.name} counts limits in Redis again`,
          () => r.call(limited.secret),
          (v) => v.status === 200,
          5000,
        );
      }
      const last = await a.admin("POST", `/keys/${after.id}/revoke`);
      expect(last.headers.get("keyward-propagation")).toBeNull();
      await refusedEverywhere(after.secret, "key_revoked", 2000);
      for (const [k, code] of [
        [before, "key_revoked"],
        [during, "key_revoked"],
        [frozen, "key_frozen"],
      ] as const) {
        for (const r of replicas) expect(await r.call(k.secret)).toEqual({ status: 401, code });
      }
      // No replica crashed along the way.
      for (const r of replicas) expect(r.child.exitCode).toBeNull();
    });
  });
}
