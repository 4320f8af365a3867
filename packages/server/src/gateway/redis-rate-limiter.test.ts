import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../ops/logger.js";
import {
  createFallbackRateLimiter,
  createMemoryRateLimiter,
  LimiterUnavailableError,
  type RateLimiter,
} from "./rate-limiter.js";
import { connectLimitsRedis, type LimitsRedis } from "./redis-client.js";
import { createRedisQuota } from "./redis-quota.js";
import { createRedisRateLimiter } from "./redis-rate-limiter.js";

// The Redis scripts against a real Redis, each run under a prefix of its own; and the fallback
// wrapper with fakes.
const redisUrl = process.env.KEYWARD_TEST_REDIS_URL;
if (!redisUrl) console.warn("[redis-rate-limiter] Redis tests skipped: KEYWARD_TEST_REDIS_URL is not set");

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);

describe.skipIf(!redisUrl)("Redis rate limiter and quota scripts", () => {
  const prefix = `kwtest:${randomBytes(6).toString("hex")}:`;
  let conn: LimitsRedis;
  let probe: Redis;

  beforeAll(async () => {
    conn = connectLimitsRedis({ url: redisUrl as string, logger: silentLogger() });
    expect(await conn.ready(5000)).toBe(true);
    probe = new Redis(redisUrl as string);
  });
  afterAll(async () => {
    const keys = await probe.keys(`${prefix}*`);
    if (keys.length > 0) await probe.del(...keys);
    probe.disconnect();
    conn.close();
  });

  it("admits exactly `limit` of many concurrent hits in one window, counting remaining down", async () => {
    const limiter = createRedisRateLimiter({ redis: conn.redis, prefix });
    const policy = { limit: 7, window_s: 60 };
    const results = await Promise.all(Array.from({ length: 30 }, () => limiter.hit("lin_a", policy, T0 + 1500)));
    expect(results.filter((r) => r.allowed)).toHaveLength(7);
    expect(
      results
        .filter((r) => r.allowed)
        .map((r) => r.remaining)
        .sort(),
    ).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const r of results) {
      expect(r.limit).toBe(7);
      expect(r.resetS).toBe(59); // 58.5 s left in the window, rounded up
      if (!r.allowed) expect(r.remaining).toBe(0);
    }
    // The next window starts from zero; another lineage never shares a count.
    expect(await limiter.hit("lin_a", policy, T0 + 60_000)).toMatchObject({ allowed: true, remaining: 6, resetS: 60 });
    expect(await limiter.hit("lin_b", policy, T0 + 1500)).toMatchObject({ allowed: true, remaining: 6 });
  });

  it("names each window's key and gives it a TTL, so nothing accumulates", async () => {
    const limiter = createRedisRateLimiter({ redis: conn.redis, prefix });
    await limiter.hit("lin_ttl", { limit: 3, window_s: 10 }, Date.now());
    const keys = await probe.keys(`${prefix}rl:lin_ttl:*`);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(new RegExp(`^${prefix}rl:lin_ttl:10:\\d+$`));
    const ttl = await probe.pttl(keys[0] as string);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(15_000);
  });

  it("quota: unseeded without a seed; the first seed wins (SET NX); counts stop at the limit", async () => {
    const quota = createRedisQuota({ redis: conn.redis, prefix });
    expect(await quota.take("lin_q", 0, 5, undefined)).toEqual({ status: "unseeded" });
    expect(await quota.take("lin_q", 0, 5, 3)).toEqual({ status: "allowed", used: 4 });
    // A second replica seeding from an older store value does not reset the counter.
    expect(await quota.take("lin_q", 0, 5, 0)).toEqual({ status: "allowed", used: 5 });
    expect(await quota.take("lin_q", 0, 5, undefined)).toEqual({ status: "denied", used: 5 });
    const ttl = await probe.pttl(`${prefix}q:lin_q:0`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
  });

  it("quota: concurrent takes across connections admit exactly the remainder", async () => {
    const other = connectLimitsRedis({ url: redisUrl as string, logger: silentLogger() });
    try {
      expect(await other.ready(5000)).toBe(true);
      const a = createRedisQuota({ redis: conn.redis, prefix });
      const b = createRedisQuota({ redis: other.redis, prefix });
      const takes = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).take("lin_qc", 86_400_000, 10, 2)),
      );
      expect(takes.filter((t) => t.status === "allowed")).toHaveLength(8);
    } finally {
      other.close();
    }
  });

  it("rejects with LimiterUnavailableError, at once, when Redis cannot be reached", async () => {
    const dead = connectLimitsRedis({ url: "redis://127.0.0.1:1", logger: silentLogger() });
    try {
      expect(await dead.ready(2000)).toBe(false);
      const limiter = createRedisRateLimiter({ redis: dead.redis, prefix });
      await expect(limiter.hit("lin_x", { limit: 1, window_s: 1 }, T0)).rejects.toBeInstanceOf(LimiterUnavailableError);
      const quota = createRedisQuota({ redis: dead.redis, prefix });
      await expect(quota.take("lin_x", 0, 1, 0)).rejects.toBeInstanceOf(LimiterUnavailableError);
    } finally {
      dead.close();
    }
  });
});

describe("fallback rate limiter", () => {
  const policy = { limit: 2, window_s: 60 };
  const failing = (err: Error): RateLimiter => ({ hit: () => Promise.reject(err), close() {} });

  it("closed: rethrows the unavailability and never asks the local limiter", async () => {
    const seen: unknown[] = [];
    const local = createMemoryRateLimiter();
    const limiter = createFallbackRateLimiter({
      shared: failing(new LimiterUnavailableError(new Error("down"))),
      local,
      fallback: "closed",
      onUnavailable: (e) => seen.push(e),
    });
    await expect(limiter.hit("b", policy, T0)).rejects.toBeInstanceOf(LimiterUnavailableError);
    expect(seen).toHaveLength(1);
    expect(local.hit("b", policy, T0)).toMatchObject({ allowed: true, remaining: 1 });
    limiter.close();
  });

  it("local: counts in this process while the shared limiter cannot answer", async () => {
    const limiter = createFallbackRateLimiter({
      shared: failing(new LimiterUnavailableError(new Error("down"))),
      local: createMemoryRateLimiter(),
      fallback: "local",
      onUnavailable: () => {},
    });
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await limiter.hit("b", policy, T0));
    expect(results.map((r) => r.allowed)).toEqual([true, true, false]);
    limiter.close();
  });

  it("any other failure propagates as it is, in either mode", async () => {
    const limiter = createFallbackRateLimiter({
      shared: failing(new TypeError("a bug")),
      local: createMemoryRateLimiter(),
      fallback: "local",
      onUnavailable: () => {},
    });
    await expect(limiter.hit("b", policy, T0)).rejects.toBeInstanceOf(TypeError);
    limiter.close();
  });
});
