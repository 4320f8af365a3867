import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  openTestSqlite,
  redisUrl,
  type TestReplica,
  testPrefix,
  testReplica,
} from "../../test-support/leased-replicas.js";
import { redisServerSkip, startRedisServer } from "../../test-support/redis-server.js";
import type { Db } from "../store/db.js";
import { type LeaseSettings, maxLease } from "./lease-sizing.js";
import { LimiterUnavailableError } from "./shared-limits.js";

// Redis going away while leases are out: the permits already leased are still used (Redis counted
// them), then `rate_limit_fallback` applies — so within one lease of requests.
if (!redisUrl) console.warn("[leased-limits.error] skipped: KEYWARD_TEST_REDIS_URL is not set");

const SETTINGS: LeaseSettings = { replicas: 1, fraction: 0.1, leaseMs: 100 };
const T0 = Date.UTC(2030, 0, 1, 0, 0, 20);
const key = { lineage: "key_F", rateLimit: { limit: 1000, window_s: 60 }, quota: null };

describe.skipIf(!redisUrl)("leased limits while Redis goes away", () => {
  let db: Db;
  const open: TestReplica[] = [];
  beforeAll(async () => {
    db = await openTestSqlite();
  });
  afterAll(async () => {
    for (const r of open) await r.close().catch(() => {});
    await db.close();
  });

  /** 400 requests, 20 at a time: the replica then holds a lease. */
  async function warm(r: TestReplica) {
    for (let i = 0; i < 20; i++) {
      const out = await Promise.all(Array.from({ length: 20 }, () => r.check(key, T0 + i)));
      expect(out.every((o) => o.rate?.allowed)).toBe(true);
    }
  }

  it("closed: at most one lease of requests is served after Redis went away, then 503 rate_limit_unavailable", async () => {
    const r = await testReplica({ db, prefix: testPrefix(), settings: SETTINGS, fallback: "closed" });
    open.push(r);
    await warm(r);
    r.redis.disconnect();
    let served = 0;
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      try {
        if ((await r.check(key, T0 + 100)).rate?.allowed) served++;
      } catch (err) {
        expect(err).toBeInstanceOf(LimiterUnavailableError);
        refused++;
        if (refused === 1) expect(i).toBe(served);
      }
    }
    expect(served).toBeLessThanOrEqual(maxLease(key.rateLimit.limit, SETTINGS));
    expect(refused).toBe(300 - served);
    expect(r.unavailable).toHaveLength(refused);
  });

  it("local: goes on from Redis's count, so the window still admits exactly the limit", async () => {
    const r = await testReplica({ db, prefix: testPrefix(), settings: SETTINGS, fallback: "local" });
    open.push(r);
    await warm(r);
    r.redis.disconnect();
    let served = 0;
    for (let i = 0; i < 1000; i++) if ((await r.check(key, T0 + 100)).rate?.allowed) served++;
    expect(400 + served).toBe(key.rateLimit.limit);
    expect(r.unavailable.length).toBeGreaterThan(0);
  });

  it.skipIf(redisServerSkip)(
    "a Redis that hangs: at most one lease served, then refused within the command timeout; served again once it answers",
    async () => {
      const own = await startRedisServer();
      try {
        const r = await testReplica({ db, prefix: testPrefix(), settings: SETTINGS, fallback: "closed", url: own.url });
        open.push(r);
        await warm(r);
        own.pause();
        let served = 0;
        let refused: unknown;
        const started = performance.now();
        try {
          for (let i = 0; i < 300 && refused === undefined; i++) {
            try {
              if ((await r.check(key, T0 + 100)).rate?.allowed) served++;
            } catch (err) {
              refused = err;
            }
          }
        } finally {
          own.resume();
        }
        expect(refused).toBeInstanceOf(LimiterUnavailableError);
        expect(served).toBeLessThanOrEqual(maxLease(key.rateLimit.limit, SETTINGS));
        // Bounded by the connection's command timeout (500 ms), with room for a busy machine.
        expect(performance.now() - started).toBeLessThan(5000);
        expect((await r.check(key, T0 + 200)).rate?.allowed).toBe(true);
      } finally {
        await own.close();
      }
    },
  );
});
