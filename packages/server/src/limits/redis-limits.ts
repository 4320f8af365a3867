import type { Redis } from "ioredis";
import { runScript, script } from "./redis-client.js";

/**
 * A key's rate limit, then its quota, in one atomic script: one round trip per request, and
 * replicas racing on one lineage admit exactly the limit between them. The order and the counting
 * are those of the in-memory path: a refused rate limit counts nothing and leaves the quota alone;
 * an admitted one counts its window even when the quota then refuses.
 *
 * The quota counter is seeded from the store when missing (`SET NX`: the first replica to seed
 * wins); without a seed the script answers "unseeded" before counting anything, and the caller
 * asks again with one. Windows expire 5 s after their end; quota counters after an idle hour.
 *
 * KEYS[1] rate window, KEYS[2] quota counter (one hash slot: both name `{lineage}`).
 * ARGV rate limit ('' = none), window TTL ms, quota limit ('' = none), idle TTL ms, seed ('' = none).
 * Returns {rate, rate used, quota, quota used}: 1 admitted, 0 refused, -1 not asked; -2 unseeded.
 */
const CHECK = script(`
local rate, rused = -1, 0
if ARGV[1] ~= '' then
  rused = tonumber(redis.call('GET', KEYS[1]) or '0')
  if rused >= tonumber(ARGV[1]) then return {0, rused, -1, 0} end
  rate = 1
end
local quota, qused = -1, 0
if ARGV[3] ~= '' then
  local q = redis.call('GET', KEYS[2])
  if not q then
    if ARGV[5] == '' then return {-2, 0, -1, 0} end
    redis.call('SET', KEYS[2], ARGV[5], 'NX', 'PX', ARGV[4])
    q = ARGV[5]
  end
  qused = tonumber(q)
  if qused < tonumber(ARGV[3]) then
    qused = redis.call('INCR', KEYS[2])
    quota = 1
  else
    quota = 0
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
if rate == 1 then
  rused = redis.call('INCR', KEYS[1])
  if rused == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
return {rate, rused, quota, qused}
`);

/** Kept past the window's end so a replica whose clock runs a little behind still finds it. */
const WINDOW_SLACK_MS = 5_000;

export interface LimitsRequest {
  lineage: string;
  /** A fixed window: `start` (ms, aligned to the epoch) and its length. */
  rate?: { limit: number; windowS: number; start: number; now: number };
  quota?: { limit: number; periodStart: number; seed?: number };
}

export interface Counted {
  allowed: boolean;
  /** The counter after this request (or as it stood, when refused). */
  used: number;
}

export type LimitsReply =
  | { status: "unseeded" }
  | { status: "checked"; rate: Counted | undefined; quota: Counted | undefined };

export interface RedisLimits {
  /** Rejects with whatever Redis or the connection failed with. */
  check(req: LimitsRequest): Promise<LimitsReply>;
}

/**
 * Counters under `<prefix>rl:{<lineage>}:<window_s>:<window start, s>` and
 * `<prefix>q:{<lineage>}:<period start, ms>` (the store's own key for the quota row).
 */
export function createRedisLimits(deps: { redis: Redis; prefix: string; idleTtlMs?: number }): RedisLimits {
  const { redis, prefix } = deps;
  const idleTtlMs = deps.idleTtlMs ?? 3_600_000;
  return {
    check({ lineage, rate, quota }) {
      const tag = `{${lineage}}`;
      const rateKey = rate ? `${prefix}rl:${tag}:${rate.windowS}:${rate.start / 1000}` : `${prefix}rl:${tag}`;
      const quotaKey = quota ? `${prefix}q:${tag}:${quota.periodStart}` : `${prefix}q:${tag}`;
      const args = [
        rate ? rate.limit : "",
        rate ? rate.start + rate.windowS * 1000 - rate.now + WINDOW_SLACK_MS : 0,
        quota ? quota.limit : "",
        idleTtlMs,
        quota?.seed ?? "",
      ];
      return runScript(redis, CHECK, [rateKey, quotaKey], args).then((reply) => {
        if (!Array.isArray(reply) || reply.length !== 4 || !reply.every((n) => typeof n === "number")) {
          throw new Error("unexpected reply from the limits script");
        }
        const [r, rUsed, q, qUsed] = reply as [number, number, number, number];
        if (r === -2) return { status: "unseeded" };
        return {
          status: "checked",
          rate: r === -1 ? undefined : { allowed: r === 1, used: rUsed },
          quota: q === -1 ? undefined : { allowed: q === 1, used: qUsed },
        };
      });
    },
  };
}
