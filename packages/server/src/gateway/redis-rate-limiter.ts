import type { Redis } from "ioredis";
import { LimiterUnavailableError, type RateLimiter } from "./rate-limiter.js";
import { runScript, script } from "./redis-client.js";

/**
 * One fixed window: refuse at the limit without counting, else count. Atomic, so replicas racing
 * on one window admit exactly `limit` between them. The key names its window, so the TTL (set
 * with the first count) only clears it away: an old window is never read again.
 */
const HIT = script(`
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return {0, used} end
used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, used}
`);

/** Kept past the window's end so a replica whose clock runs a little behind still finds it. */
const TTL_SLACK_MS = 5_000;

/**
 * Rate limits shared by every replica: the same epoch-aligned fixed windows as the in-memory
 * limiter (so RateLimit-Reset is exact and identical on every replica), counted in Redis under
 * `<prefix>rl:<lineage>:<window_s>:<window start, s>` with one script call per check. Windows
 * come from the replica's clock: replicas must keep NTP time; a skew of δ only moves which window
 * a request near a boundary counts in.
 *
 * Any Redis failure (down, timeout, a reply of the wrong shape) rejects with
 * LimiterUnavailableError; the fallback limiter decides what that means.
 */
export function createRedisRateLimiter(deps: { redis: Redis; prefix: string }): RateLimiter {
  const { redis, prefix } = deps;
  return {
    hit(bucket, policy, now) {
      const windowMs = policy.window_s * 1000;
      const start = now - (now % windowMs);
      const resetS = Math.max(1, Math.ceil((start + windowMs - now) / 1000));
      const key = `${prefix}rl:${bucket}:${policy.window_s}:${start / 1000}`;
      const ttlMs = start + windowMs - now + TTL_SLACK_MS;
      return runScript(redis, HIT, key, [policy.limit, ttlMs]).then(
        (reply) => {
          if (!Array.isArray(reply) || typeof reply[1] !== "number") {
            throw new LimiterUnavailableError(new Error("unexpected reply from the rate-limit script"));
          }
          const used = reply[1];
          return {
            allowed: reply[0] === 1,
            limit: policy.limit,
            remaining: Math.max(0, policy.limit - used),
            resetS,
          };
        },
        (err: unknown) => {
          throw new LimiterUnavailableError(err);
        },
      );
    },
    close() {},
  };
}
