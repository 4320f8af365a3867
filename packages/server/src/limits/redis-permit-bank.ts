import type { Redis } from "ioredis";
import {
  type PermitBank,
  type PermitCounter,
  type PermitGrant,
  QUOTA_IDLE_MS,
  WINDOW_SLACK_MS,
} from "./permit-bank.js";
import { runScript, script } from "./redis-client.js";

/**
 * TAKE: up to ARGV[2] permits of the counter KEYS[1], the very key the per-request script of
 * redis-limits.ts counts in (replicas with and without leases share one count during a rolling
 * upgrade). A missing counter is created from the seed ARGV[4] ('' = none: answers -1,
 * "unseeded", before counting anything; the caller reads the store and asks again) and expires
 * after ARGV[3] ms: a rate window at its end plus slack (set once), a quota counter after an idle
 * time (ARGV[5] = '1': renewed by every take).
 * ARGV: limit, want, ttl ms, seed, renew. Returns {granted, used} or {-1, 0}.
 */
const TAKE = script(`
local v = redis.call('GET', KEYS[1])
local used
if not v then
  if ARGV[4] == '' then return {-1, 0} end
  used = tonumber(ARGV[4])
  redis.call('SET', KEYS[1], used, 'PX', ARGV[3])
else
  used = tonumber(v)
  if ARGV[5] == '1' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
end
local g = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) - used)
if g > 0 then used = redis.call('INCRBY', KEYS[1], g) else g = 0 end
return {g, used}
`);

/** GIVE: ARGV[1] permits back to KEYS[1] if it still exists, never below zero. Returns those taken back. */
const GIVE = script(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local n = math.min(tonumber(v), tonumber(ARGV[1]))
if n > 0 then redis.call('DECRBY', KEYS[1], n) end
return n
`);

/**
 * The name of a counter, as in redis-limits.ts: `<prefix>rl:{<lineage>}:<window s>:<window start, s>`
 * and `<prefix>q:{<lineage>}:<period start, ms>`. One hash slot per lineage.
 */
function counterKey(prefix: string, c: PermitCounter): string {
  return c.kind === "rate"
    ? `${prefix}rl:{${c.lineage}}:${c.windowMs / 1000}:${c.windowStart / 1000}`
    : `${prefix}q:{${c.lineage}}:${c.windowStart}`;
}

/**
 * Redis keeps one key per counter and no epoch: every grant has the epoch REDIS_EPOCH, and a give
 * reaches the counter under that name even when it was recreated since (a Redis restart, an idle
 * quota reseeded from the store). That stays within the bound of lease-sizing.ts: a process gives
 * back only permits of its own lease that it did not use, so what the recreated counter grants
 * again plus what the process used of that lease is at most that one lease.
 */
export const REDIS_EPOCH = "redis";

/**
 * The bank in Redis, shared by every replica: one script call per take or give (names above). The connection is the limits' (redis-client.ts): a command is sent
 * at most once, a failed one rejects, the caller applies `rate_limit_fallback`.
 */
export function createRedisPermitBank(deps: {
  redis: Redis;
  prefix: string;
  quotaIdleMs?: number;
  now?: () => number;
}): PermitBank {
  const { redis, prefix } = deps;
  const now = deps.now ?? Date.now;
  const quotaIdleMs = deps.quotaIdleMs ?? QUOTA_IDLE_MS;

  async function run(c: PermitCounter, want: number, seed: number | undefined): Promise<PermitGrant | undefined> {
    const ttl = c.kind === "rate" ? Math.max(1, c.windowStart + c.windowMs + WINDOW_SLACK_MS - now()) : quotaIdleMs;
    const reply = await runScript(
      redis,
      TAKE,
      [counterKey(prefix, c)],
      [c.limit, Math.max(0, Math.floor(want)), ttl, seed ?? (c.kind === "rate" ? 0 : ""), c.kind === "quota" ? 1 : 0],
    );
    if (!Array.isArray(reply) || reply.length !== 2 || typeof reply[0] !== "number" || typeof reply[1] !== "number") {
      throw new Error("unexpected reply from the permit script");
    }
    const [granted, used] = reply as [number, number];
    if (granted === -1) return undefined;
    return { granted, used, epoch: REDIS_EPOCH };
  }

  return {
    async take(c, want, seed) {
      const first = await run(c, want, undefined);
      if (first) return first;
      // Unseeded quota counter: a store failure propagates as it is (it is the store's, not Redis's).
      const second = await run(c, want, seed ? await seed() : 0);
      if (!second) throw new Error("the quota counter could not be seeded");
      return second;
    },
    async give(c, count, epoch) {
      if (!(count > 0)) return;
      if (epoch !== REDIS_EPOCH) return;
      await runScript(redis, GIVE, [counterKey(prefix, c)], [Math.floor(count)]);
    },
    async close() {
      // The connection belongs to the limits (limits.ts closes it).
    },
  };
}
