import type { Redis } from "ioredis";
import { LimiterUnavailableError } from "./rate-limiter.js";
import { runScript, script } from "./redis-client.js";

export type SharedTake = { status: "allowed" | "denied"; used: number } | { status: "unseeded" };

/** A quota counter every replica shares. Rejects with LimiterUnavailableError when it cannot answer. */
export interface SharedQuota {
  /**
   * Takes one unit of (lineage, period) when `used < limit`. A counter that does not exist yet is
   * created from `seed` (the durable count in the store); without a seed the answer is `unseeded`
   * and nothing is counted.
   */
  take(lineage: string, periodStart: number, limit: number, seed: number | undefined): Promise<SharedTake>;
}

/**
 * Seed-if-absent (SET NX: the first replica to seed wins, the others count on its value), then
 * check-and-increment, in one atomic script. Every call renews the idle TTL: a counter unused that
 * long is dropped and re-seeded from the store, which by then holds every replica's flushed count.
 */
const TAKE = script(`
local used = redis.call('GET', KEYS[1])
if not used then
  if ARGV[3] == '' then return {-1, 0} end
  redis.call('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[2])
  used = ARGV[3]
end
used = tonumber(used)
if used >= tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {0, used}
end
used = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, used}
`);

/** Quota counters in Redis under `<prefix>q:<lineage>:<period start, ms>` (the store's own key). */
export function createRedisQuota(deps: { redis: Redis; prefix: string; idleTtlMs?: number }): SharedQuota {
  const { redis, prefix } = deps;
  const idleTtlMs = deps.idleTtlMs ?? 3_600_000;
  return {
    async take(lineage, periodStart, limit, seed) {
      let reply: unknown;
      try {
        reply = await runScript(redis, TAKE, `${prefix}q:${lineage}:${periodStart}`, [
          limit,
          idleTtlMs,
          seed === undefined ? "" : seed,
        ]);
      } catch (err) {
        throw new LimiterUnavailableError(err);
      }
      if (!Array.isArray(reply) || typeof reply[0] !== "number" || typeof reply[1] !== "number") {
        throw new LimiterUnavailableError(new Error("unexpected reply from the quota script"));
      }
      if (reply[0] === -1) return { status: "unseeded" };
      return { status: reply[0] === 1 ? "allowed" : "denied", used: reply[1] };
    },
  };
}
