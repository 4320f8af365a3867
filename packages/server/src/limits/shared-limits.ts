import { createBoundedCache } from "@keyward/sdk/cache";
import type { KeyEntry } from "../keys/key-entry.js";
import type { RateLimiter, RateLimitResult } from "./rate-limiter.js";
import type { LimitsReply, RedisLimits } from "./redis-limits.js";
import { type QuotaResult, quotaPeriod, quotaRetryAfter, type UsageTracker } from "./usage.js";

/**
 * The shared store (Redis) could not answer. Not a denial: `rate_limit_fallback` decides —
 * refuse with `rate_limit_unavailable` (closed) or count in this process (local).
 */
export class LimiterUnavailableError extends Error {
  constructor(cause: unknown) {
    super("the shared rate-limit store is unavailable", { cause });
    this.name = "LimiterUnavailableError";
  }
}

export type LimitsFallback = "closed" | "local";

/** What the rate limit and the quota said; undefined for one the key does not have (or not reached). */
export interface LimitsOutcome {
  rate: RateLimitResult | undefined;
  quota: QuotaResult | undefined;
}

export interface SharedLimits {
  /**
   * The key's rate limit, then its quota, counted across every replica: one Redis round trip
   * (two when the quota counter must first be seeded from the store). Rejects with
   * LimiterUnavailableError when Redis cannot answer and the fallback is `closed`; with store
   * errors (the seed read) as they are. May answer synchronously (permit leases answering from
   * memory, leased-limits.ts); callers must accept both, as with RateLimiter.hit.
   */
  check(key: Pick<KeyEntry, "lineage" | "rateLimit" | "quota">, now: number): LimitsOutcome | Promise<LimitsOutcome>;
}

/** Lineages whose last shared window count is remembered; beyond it the oldest is forgotten. */
export const MAX_REMEMBERED_WINDOWS = 100_000;

/**
 * Limits in Redis, with the in-process limiter and counters as the fallback. Each request asks
 * Redis once: a command that failed is never sent again (it may have run), and the local
 * counters are asked only for requests Redis did not answer — so a request may be counted once in
 * Redis and once locally, never zero times.
 *
 * The local window does not start from zero when Redis goes away mid-window: it starts from the
 * count Redis last gave this replica for that lineage and window (quotas already do the same
 * through usage.recordShared). Redis admitted at most N in the window and the replica that asked
 * it last saw that total, so R replicas admit at most R × N in all, as operations.md promises —
 * not N more each on top of what Redis already admitted.
 */
export function createSharedLimits(deps: {
  redis: RedisLimits;
  usage: UsageTracker;
  local: RateLimiter;
  fallback: LimitsFallback;
  onUnavailable: (err: LimiterUnavailableError) => void;
}): SharedLimits {
  const { redis, usage, local, fallback, onUnavailable } = deps;
  /** Per lineage: the window Redis last answered for (its start and length) and its count then. */
  const lastShared = createBoundedCache<string, { start: number; windowMs: number; used: number }>({
    max: MAX_REMEMBERED_WINDOWS,
  });

  function remember(lineage: string, start: number, windowMs: number, used: number): void {
    lastShared.set(lineage, { start, windowMs, used });
  }

  async function localCheck(
    key: Pick<KeyEntry, "lineage" | "rateLimit" | "quota">,
    now: number,
  ): Promise<LimitsOutcome> {
    let rate: RateLimitResult | undefined;
    if (key.rateLimit) {
      const windowMs = key.rateLimit.window_s * 1000;
      const seen = lastShared.get(key.lineage);
      if (seen !== undefined && seen.windowMs === windowMs && seen.start === now - (now % windowMs)) {
        local.seed?.(key.lineage, key.rateLimit, now, seen.used);
      }
      rate = await local.hit(key.lineage, key.rateLimit, now);
      if (!rate.allowed) return { rate, quota: undefined };
    }
    return { rate, quota: key.quota ? await usage.check(key.lineage, key.quota, now) : undefined };
  }

  async function unavailable(cause: unknown, key: Pick<KeyEntry, "lineage" | "rateLimit" | "quota">, now: number) {
    const err = new LimiterUnavailableError(cause);
    onUnavailable(err);
    if (fallback === "closed") throw err;
    return localCheck(key, now);
  }

  return {
    async check(key, now) {
      const policy = key.rateLimit;
      const windowMs = policy ? policy.window_s * 1000 : 0;
      const windowStart = now - (windowMs > 0 ? now % windowMs : 0);
      const period = key.quota ? quotaPeriod(key.quota.period, now) : undefined;
      const ask = (seed: number | undefined) =>
        redis.check({
          lineage: key.lineage,
          ...(policy ? { rate: { limit: policy.limit, windowS: policy.window_s, start: windowStart, now } } : {}),
          ...(key.quota && period
            ? { quota: { limit: key.quota.limit, periodStart: period.start, ...(seed !== undefined ? { seed } : {}) } }
            : {}),
        });

      let reply: LimitsReply;
      try {
        reply = await ask(undefined);
      } catch (err) {
        return unavailable(err, key, now);
      }
      if (reply.status === "unseeded") {
        if (!period) return unavailable(new Error("unexpected unseeded reply"), key, now);
        // A store failure here is the store's, not Redis's: it propagates as it is.
        const seed = await usage.seed(key.lineage, period.start);
        try {
          reply = await ask(seed);
        } catch (err) {
          return unavailable(err, key, now);
        }
        if (reply.status === "unseeded") return unavailable(new Error("quota counter not seeded"), key, now);
      }

      if (policy && reply.rate) remember(key.lineage, windowStart, windowMs, reply.rate.used);
      const rate: RateLimitResult | undefined =
        policy && reply.rate
          ? {
              allowed: reply.rate.allowed,
              limit: policy.limit,
              remaining: Math.max(0, policy.limit - reply.rate.used),
              resetS: Math.max(1, Math.ceil((windowStart + windowMs - now) / 1000)),
            }
          : undefined;
      let quota: QuotaResult | undefined;
      if (period && reply.quota) {
        usage.recordShared(key.lineage, period.start, reply.quota.allowed, reply.quota.used, key.quota ?? undefined);
        quota = reply.quota.allowed ? { ok: true } : { ok: false, retryAfterS: quotaRetryAfter(period.end, now) };
      }
      return { rate, quota };
    },
  };
}
