import type { RateLimitPolicy } from "../keys/key-entry.js";

export interface RateLimitResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window resets (RateLimit-Reset, Retry-After). */
  resetS: number;
}

/**
 * Counts requests per bucket (a key lineage). Implementations: in memory (one process) and, for
 * many replicas, a shared store. A limiter may answer synchronously; callers must accept both.
 */
export interface RateLimiter {
  hit(bucket: string, policy: RateLimitPolicy, now: number): RateLimitResult | Promise<RateLimitResult>;
  /**
   * Raises the count of `bucket`'s window at `now` to at least `used` (never lowers it): the local
   * fallback starts from what this replica last knew of the shared window (shared-limits.ts).
   */
  seed?(bucket: string, policy: RateLimitPolicy, now: number, used: number): void;
  close(): void;
}

/** Fixed windows aligned to the epoch, so every replica and every client agree on the reset time. */
export function createMemoryRateLimiter(opts: { sweepIntervalMs?: number } = {}): RateLimiter {
  const windows = new Map<string, { start: number; windowMs: number; count: number }>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [bucket, w] of windows) if (w.start + w.windowMs <= now) windows.delete(bucket);
  }, opts.sweepIntervalMs ?? 60_000);
  sweep.unref();

  function windowAt(bucket: string, policy: RateLimitPolicy, now: number) {
    const windowMs = policy.window_s * 1000;
    const start = now - (now % windowMs);
    let w = windows.get(bucket);
    if (!w || w.start !== start || w.windowMs !== windowMs) {
      w = { start, windowMs, count: 0 };
      windows.set(bucket, w);
    }
    return w;
  }

  return {
    seed(bucket, policy, now, used) {
      const w = windowAt(bucket, policy, now);
      w.count = Math.max(w.count, Math.min(used, policy.limit));
    },
    hit(bucket, policy, now) {
      const w = windowAt(bucket, policy, now);
      const { start, windowMs } = w;
      const resetS = Math.max(1, Math.ceil((start + windowMs - now) / 1000));
      if (w.count >= policy.limit) return { allowed: false, limit: policy.limit, remaining: 0, resetS };
      w.count++;
      return { allowed: true, limit: policy.limit, remaining: policy.limit - w.count, resetS };
    },
    close() {
      clearInterval(sweep);
    },
  };
}

export function rateLimitHeaders(r: RateLimitResult): Record<string, string> {
  return {
    "ratelimit-limit": String(r.limit),
    "ratelimit-remaining": String(r.remaining),
    "ratelimit-reset": String(r.resetS),
  };
}
