import type { Clock } from "../clock.js";
import type { KeyEntry } from "../keys/key-entry.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { createMemoryRateLimiter, type RateLimiter, type RateLimitResult } from "./rate-limiter.js";
import { connectLimitsRedis } from "./redis-client.js";
import { createRedisLimits } from "./redis-limits.js";
import { createSharedLimits, type LimitsFallback, type SharedLimits } from "./shared-limits.js";
import { createUsageTracker, type UsageTracker } from "./usage.js";

/** A key's rate limit alone (no quota), as the gateway counts it: token minting uses it too. */
export type KeyRateLimit = (
  key: Pick<KeyEntry, "lineage" | "rateLimit">,
  now: number,
) => Promise<RateLimitResult | undefined>;

/**
 * One request counted against `key`'s rate limit in the very bucket the gateway uses (its
 * lineage; in Redis when shared), so minting tokens and calling agents share one budget. Rejects
 * with LimiterUnavailableError like the gateway's check when Redis is down and the fallback closed.
 */
export function keyRateLimit(limits: { rateLimiter: RateLimiter; shared: SharedLimits | undefined }): KeyRateLimit {
  return async (key, now) => {
    if (!key.rateLimit) return undefined;
    if (limits.shared) {
      return (await limits.shared.check({ lineage: key.lineage, rateLimit: key.rateLimit, quota: null }, now)).rate;
    }
    return limits.rateLimiter.hit(key.lineage, key.rateLimit, now);
  };
}

export interface Limits {
  /** In this process: the limiter without Redis, the fallback with it. */
  rateLimiter: RateLimiter;
  usage: UsageTracker;
  /** Set with Redis: every limit and quota is checked there first. */
  shared: SharedLimits | undefined;
  /** Flushes usage to the store, then lets go of Redis. */
  close(): Promise<void>;
}

/**
 * Rate limiter and quota counters: in this process without `redisUrl`; with it, in Redis and
 * global across replicas, falling back per `fallback` while Redis cannot answer.
 */
export async function createLimits(deps: {
  db: Db;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  redisUrl: string | undefined;
  fallback: LimitsFallback;
  /** Namespace of every Redis key (tests use one per run). */
  keyPrefix?: string;
  /** Replaces the in-process rate limiter (tests). */
  rateLimiter?: RateLimiter;
  /** How long startup waits for Redis before serving anyway (requests then take the fallback). */
  connectWaitMs?: number;
}): Promise<Limits> {
  const { db, clock, logger, metrics, fallback } = deps;
  const rateLimiter = deps.rateLimiter ?? createMemoryRateLimiter();
  const usage = createUsageTracker({ db, clock, logger });
  if (!deps.redisUrl) {
    return {
      rateLimiter,
      usage,
      shared: undefined,
      async close() {
        rateLimiter.close();
        await usage.close();
      },
    };
  }

  const conn = connectLimitsRedis({
    url: deps.redisUrl,
    logger,
    onStatus: (up) => metrics.limitsRedisUp.set(up ? 1 : 0),
  });
  const shared = createSharedLimits({
    redis: createRedisLimits({ redis: conn.redis, prefix: deps.keyPrefix ?? "kw:" }),
    usage,
    local: rateLimiter,
    fallback,
    onUnavailable: () => metrics.limitsUnavailable.inc({ fallback }),
  });
  if (!(await conn.ready(deps.connectWaitMs ?? 2000))) {
    logger.warn(
      { rate_limit_fallback: fallback },
      fallback === "closed"
        ? "starting without Redis: keys with a rate limit or quota are refused (rate_limit_unavailable) until it answers"
        : "starting without Redis: rate limits and quotas count per replica until it answers",
    );
  }
  return {
    rateLimiter,
    usage,
    shared,
    async close() {
      rateLimiter.close();
      try {
        await usage.close();
      } finally {
        conn.close();
      }
    },
  };
}
