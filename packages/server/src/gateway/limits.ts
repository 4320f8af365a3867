import type { Clock } from "../clock.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { createMemoryRateLimiter, type RateLimiter } from "./rate-limiter.js";
import { connectLimitsRedis } from "./redis-client.js";
import { createRedisLimits } from "./redis-limits.js";
import { createSharedLimits, type LimitsFallback, type SharedLimits } from "./shared-limits.js";
import { createUsageTracker, type UsageTracker } from "./usage.js";

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
