import type { Clock } from "../clock.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import {
  createFallbackRateLimiter,
  createMemoryRateLimiter,
  type LimitsFallback,
  type RateLimiter,
} from "./rate-limiter.js";
import { connectLimitsRedis } from "./redis-client.js";
import { createRedisQuota } from "./redis-quota.js";
import { createRedisRateLimiter } from "./redis-rate-limiter.js";
import { createUsageTracker, type UsageTracker } from "./usage.js";

export interface Limits {
  rateLimiter: RateLimiter;
  usage: UsageTracker;
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
  /** Replaces the rate limiter (tests). */
  rateLimiter?: RateLimiter;
  /** How long startup waits for Redis before serving anyway (requests then take the fallback). */
  connectWaitMs?: number;
}): Promise<Limits> {
  const { db, clock, logger, metrics, fallback } = deps;
  if (!deps.redisUrl) {
    const rateLimiter = deps.rateLimiter ?? createMemoryRateLimiter();
    const usage = createUsageTracker({ db, clock, logger });
    return {
      rateLimiter,
      usage,
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
  const prefix = deps.keyPrefix ?? "kw:";
  const unavailable = (check: "rate" | "quota") => () => metrics.limitsUnavailable.inc({ check, fallback });
  const rateLimiter =
    deps.rateLimiter ??
    createFallbackRateLimiter({
      shared: createRedisRateLimiter({ redis: conn.redis, prefix }),
      local: createMemoryRateLimiter(),
      fallback,
      onUnavailable: unavailable("rate"),
    });
  const usage = createUsageTracker({
    db,
    clock,
    logger,
    shared: { quota: createRedisQuota({ redis: conn.redis, prefix }), fallback, onUnavailable: unavailable("quota") },
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
