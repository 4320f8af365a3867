import type { Clock } from "../clock.js";
import type { KeyEntry } from "../keys/key-entry.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { createLeasedLimits } from "./leased-limits.js";
import type { PermitBank } from "./permit-bank.js";
import { createMemoryRateLimiter, type RateLimiter, type RateLimitResult } from "./rate-limiter.js";
import { connectLimitsRedis } from "./redis-client.js";
import { createRedisLimits } from "./redis-limits.js";
import { createRedisPermitBank } from "./redis-permit-bank.js";
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
  /**
   * Permit leases (lease-sizing.ts): processes sharing the bank (`rate_limit_replicas`) and the
   * overshoot allowed (`rate_limit_overshoot`; 0: no leases, one Redis call per request).
   * Default: 1 process, 10 %.
   */
  leases?: { replicas: number; overshoot: number };
  /**
   * Without Redis: a bank shared with other processes (the primary's, for a worker of
   * `keyward serve --workers N`); limits are then leased from it like from Redis.
   */
  bank?: PermitBank;
}): Promise<Limits> {
  const { db, clock, logger, metrics, fallback } = deps;
  const rateLimiter = deps.rateLimiter ?? createMemoryRateLimiter();
  const usage = createUsageTracker({ db, clock, logger });
  const replicas = deps.leases?.replicas ?? 1;
  const overshoot = deps.leases?.overshoot ?? 0.1;
  const leased = (bank: PermitBank) =>
    createLeasedLimits({
      bank,
      usage,
      local: rateLimiter,
      fallback,
      onUnavailable: () => metrics.limitsUnavailable.inc({ fallback }),
      settings: { replicas, fraction: overshoot },
    });
  if (!deps.redisUrl && deps.bank) {
    const shared = leased(deps.bank);
    return {
      rateLimiter,
      usage,
      shared,
      async close() {
        rateLimiter.close();
        try {
          await shared.close();
        } finally {
          await usage.close();
        }
      },
    };
  }
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
  const prefix = deps.keyPrefix ?? "kw:";
  const leases = overshoot > 0 ? leased(createRedisPermitBank({ redis: conn.redis, prefix })) : undefined;
  const shared =
    leases ??
    createSharedLimits({
      redis: createRedisLimits({ redis: conn.redis, prefix }),
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
        // Leased permits go back before the connection does (they are counted in Redis).
        await leases?.close();
        await usage.close();
      } finally {
        conn.close();
      }
    },
  };
}
