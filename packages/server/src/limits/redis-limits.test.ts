import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestSqlite } from "../../test-support/databases.js";
import { frozenClock } from "../clock.js";
import { silentLogger } from "../ops/logger.js";
import { createMemoryRateLimiter } from "./rate-limiter.js";
import { connectLimitsRedis, type LimitsRedis } from "./redis-client.js";
import { createRedisLimits, type LimitsReply, type RedisLimits } from "./redis-limits.js";
import { createSharedLimits, LimiterUnavailableError, type LimitsFallback } from "./shared-limits.js";
import { createUsageTracker } from "./usage.js";

// The limits script against a real Redis, under a prefix of its own; and the fallback logic of
// shared-limits.ts against a fake Redis that fails on demand.
const redisUrl = process.env.KEYWARD_TEST_REDIS_URL;
if (!redisUrl) console.warn("[redis-limits] Redis script tests skipped: KEYWARD_TEST_REDIS_URL is not set");

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);
const window = (limit: number, now = T0 + 1500) => ({ limit, windowS: 60, start: T0, now });

describe.skipIf(!redisUrl)("the Redis limits script", () => {
  const prefix = `kwtest:${randomBytes(6).toString("hex")}:`;
  let conn: LimitsRedis;
  let limits: RedisLimits;
  let probe: Redis;

  beforeAll(async () => {
    conn = connectLimitsRedis({ url: redisUrl as string, logger: silentLogger() });
    expect(await conn.ready(5000)).toBe(true);
    limits = createRedisLimits({ redis: conn.redis, prefix });
    probe = new Redis(redisUrl as string);
  });
  afterAll(async () => {
    const keys = await probe.keys(`${prefix}*`);
    if (keys.length > 0) await probe.del(...keys);
    probe.disconnect();
    conn.close();
  });

  const used = (r: LimitsReply, which: "rate" | "quota") => (r.status === "checked" ? r[which] : undefined);

  it("admits exactly `limit` of many concurrent requests in one window, from two connections", async () => {
    const other = connectLimitsRedis({ url: redisUrl as string, logger: silentLogger() });
    try {
      expect(await other.ready(5000)).toBe(true);
      const second = createRedisLimits({ redis: other.redis, prefix });
      const replies = await Promise.all(
        Array.from({ length: 30 }, (_, i) => (i % 2 ? limits : second).check({ lineage: "a", rate: window(7) })),
      );
      const admitted = replies.map((r) => used(r, "rate")).filter((r) => r?.allowed);
      expect(admitted.map((r) => r?.used).sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
      // The next window starts from zero; another lineage never shares a count.
      const next = { ...window(7), start: T0 + 60_000, now: T0 + 61_000 };
      expect(used(await limits.check({ lineage: "a", rate: next }), "rate")).toEqual({ allowed: true, used: 1 });
      expect(used(await limits.check({ lineage: "b", rate: window(7) }), "rate")).toEqual({ allowed: true, used: 1 });
    } finally {
      other.close();
    }
  });

  it("names keys by lineage (one hash slot) with TTLs, so nothing accumulates", async () => {
    await limits.check({ lineage: "ttl", rate: window(3), quota: { limit: 5, periodStart: 0, seed: 0 } });
    const rateKey = `${prefix}rl:{ttl}:60:${T0 / 1000}`;
    const quotaKey = `${prefix}q:{ttl}:0`;
    expect((await probe.keys(`${prefix}*{ttl}*`)).sort()).toEqual([quotaKey, rateKey].sort());
    const rateTtl = await probe.pttl(rateKey);
    expect(rateTtl).toBeGreaterThan(58_500); // the rest of the window (58.5 s) …
    expect(rateTtl).toBeLessThanOrEqual(63_500); // … plus 5 s of slack
    expect(await probe.pttl(quotaKey)).toBeGreaterThan(3_500_000);
  });

  it("quota: unseeded counts nothing; the first seed wins (SET NX); counts stop at the limit", async () => {
    const ask = (seed?: number) =>
      limits.check({
        lineage: "q",
        rate: window(100),
        quota: { limit: 5, periodStart: 0, ...(seed !== undefined ? { seed } : {}) },
      });
    expect(await ask()).toEqual({ status: "unseeded" });
    expect(await probe.get(`${prefix}rl:{q}:60:${T0 / 1000}`)).toBeNull(); // the rate window was not counted either
    expect(used(await ask(3), "quota")).toEqual({ allowed: true, used: 4 });
    expect(used(await ask(0), "quota")).toEqual({ allowed: true, used: 5 }); // an older seed resets nothing
    const refused = await ask();
    expect(used(refused, "quota")).toEqual({ allowed: false, used: 5 });
    // As in memory: the rate limit admitted (and counted) the request the quota then refused.
    expect(used(refused, "rate")).toEqual({ allowed: true, used: 3 });
  });

  it("a refused rate limit leaves the quota alone", async () => {
    const ask = () => limits.check({ lineage: "r", rate: window(1), quota: { limit: 10, periodStart: 0, seed: 0 } });
    expect(used(await ask(), "quota")).toEqual({ allowed: true, used: 1 });
    const refused = await ask();
    expect(used(refused, "rate")).toEqual({ allowed: false, used: 1 });
    expect(used(refused, "quota")).toBeUndefined();
    expect(await probe.get(`${prefix}q:{r}:0`)).toBe("1");
  });

  it("rejects at once when Redis cannot be reached", async () => {
    const dead = connectLimitsRedis({ url: "redis://127.0.0.1:1", logger: silentLogger() });
    try {
      expect(await dead.ready(2000)).toBe(false);
      const started = performance.now();
      await expect(
        createRedisLimits({ redis: dead.redis, prefix }).check({ lineage: "x", rate: window(1) }),
      ).rejects.toThrow();
      expect(performance.now() - started).toBeLessThan(100);
    } finally {
      dead.close();
    }
  });
});

describe("shared limits: fallback when Redis cannot answer", () => {
  const key = {
    lineage: "key_F",
    rateLimit: { limit: 2, window_s: 60 },
    quota: { limit: 3, period: "total" as const },
  };

  async function setUp(fallback: LimitsFallback, redis: RedisLimits) {
    const db = await openTestSqlite();
    const usage = createUsageTracker({
      db,
      clock: frozenClock(T0),
      logger: silentLogger(),
      flushIntervalMs: 3_600_000,
    });
    const seen: LimiterUnavailableError[] = [];
    const shared = createSharedLimits({
      redis,
      usage,
      local: createMemoryRateLimiter(),
      fallback,
      onUnavailable: (e) => seen.push(e),
    });
    return { db, usage, shared, seen };
  }
  const down: RedisLimits = { check: () => Promise.reject(new Error("connect ECONNREFUSED")) };

  it("closed: rejects with LimiterUnavailableError and counts nothing locally", async () => {
    const { db, usage, shared, seen } = await setUp("closed", down);
    await expect(shared.check(key, T0)).rejects.toBeInstanceOf(LimiterUnavailableError);
    expect(seen).toHaveLength(1);
    await usage.close();
    expect(await db.query("SELECT used FROM quota_usage")).toEqual([]);
    await db.close();
  });

  it("local: the in-process limiter and counter decide, and what they admit reaches the store", async () => {
    const { db, usage, shared } = await setUp("local", down);
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push(await shared.check(key, T0));
    expect(outcomes.map((o) => [o.rate?.allowed, o.quota?.ok])).toEqual([
      [true, true],
      [true, true],
      [false, undefined],
    ]);
    await usage.close();
    expect(await db.query("SELECT used FROM quota_usage")).toEqual([{ used: 2 }]);
    await db.close();
  });

  it("local after Redis answered: the quota goes on from the global count Redis last reported", async () => {
    let up = true;
    const flaky: RedisLimits = {
      check: async () => {
        if (!up) throw new Error("connection closed");
        // Another replica has used 1 already: this replica's first request makes 2.
        return { status: "checked", rate: { allowed: true, used: 1 }, quota: { allowed: true, used: 2 } };
      },
    };
    const { db, usage, shared } = await setUp("local", flaky);
    expect((await shared.check({ ...key, rateLimit: null }, T0)).quota).toEqual({ ok: true });
    up = false;
    const local = await shared.check({ ...key, rateLimit: null }, T0);
    expect(local.quota).toEqual({ ok: true }); // 3 of 3
    expect((await shared.check({ ...key, rateLimit: null }, T0)).quota).toEqual({ ok: false, retryAfterS: null });
    await usage.close();
    // The store holds what this replica admitted (1 via Redis, 1 locally), not the global count.
    expect(await db.query("SELECT used FROM quota_usage")).toEqual([{ used: 2 }]);
    await db.close();
  });

  it("a store failure while seeding is the store's: it propagates as it is, in either mode", async () => {
    const unseeded: RedisLimits = { check: async () => ({ status: "unseeded" }) };
    const { db, shared, usage } = await setUp("local", unseeded);
    await usage.close();
    await db.close(); // the seed read now fails
    await expect(shared.check(key, T0)).rejects.not.toBeInstanceOf(LimiterUnavailableError);
  });
});
