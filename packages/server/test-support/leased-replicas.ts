import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { frozenClock } from "../src/clock.js";
import type { KeyEntry } from "../src/keys/key-entry.js";
import type { LeaseSettings } from "../src/limits/lease-sizing.js";
import { createLeasedLimits } from "../src/limits/leased-limits.js";
import { createMemoryRateLimiter } from "../src/limits/rate-limiter.js";
import { connectLimitsRedis } from "../src/limits/redis-client.js";
import { createRedisPermitBank } from "../src/limits/redis-permit-bank.js";
import type { LimiterUnavailableError, LimitsFallback } from "../src/limits/shared-limits.js";
import { createUsageTracker } from "../src/limits/usage.js";
import { silentLogger } from "../src/ops/logger.js";
import type { Db } from "../src/store/db.js";
import { openTestSqlite } from "./databases.js";

/** Test support: leased-limits instances on one real Redis (one connection each), as replicas. */
export const redisUrl = process.env.KEYWARD_TEST_REDIS_URL;

export type LimitedKey = Pick<KeyEntry, "lineage" | "rateLimit" | "quota">;

export interface TestReplica {
  check: ReturnType<typeof createLeasedLimits>["check"];
  redis: Redis;
  usage: ReturnType<typeof createUsageTracker>;
  unavailable: LimiterUnavailableError[];
  /** Calls this replica made to the bank (takes and gives). */
  bankCalls: { n: number };
  /** Gives its leases back, flushes usage, lets go of Redis. */
  close(): Promise<void>;
}

export function testPrefix(): string {
  return `kwtest:${randomBytes(6).toString("hex")}:`;
}

/** The virtual clock the banks compute TTLs from (tests drive it). */
export const clockNow = { t: Date.UTC(2030, 0, 1) };

export async function testReplica(opts: {
  db: Db;
  prefix: string;
  settings: LeaseSettings;
  fallback?: LimitsFallback;
  /** Another Redis than KEYWARD_TEST_REDIS_URL (a test's own redis-server). */
  url?: string;
}): Promise<TestReplica> {
  const conn = connectLimitsRedis({ url: opts.url ?? (redisUrl as string), logger: silentLogger() });
  if (!(await conn.ready(2000))) throw new Error("test Redis not reachable");
  const usage = createUsageTracker({
    db: opts.db,
    clock: frozenClock(clockNow.t),
    logger: silentLogger(),
    flushIntervalMs: 3_600_000,
  });
  const local = createMemoryRateLimiter();
  const unavailable: LimiterUnavailableError[] = [];
  const bankCalls = { n: 0 };
  const redisBank = createRedisPermitBank({ redis: conn.redis, prefix: opts.prefix, now: () => clockNow.t });
  const limits = createLeasedLimits({
    bank: {
      take: (c, want, seed) => {
        bankCalls.n++;
        return redisBank.take(c, want, seed);
      },
      give: (c, n, epoch) => {
        bankCalls.n++;
        return redisBank.give(c, n, epoch);
      },
      close: () => redisBank.close(),
    },
    usage,
    local,
    fallback: opts.fallback ?? "closed",
    onUnavailable: (e) => unavailable.push(e),
    settings: opts.settings,
  });
  return {
    check: limits.check,
    redis: conn.redis,
    usage,
    unavailable,
    bankCalls,
    async close() {
      try {
        await limits.close();
        local.close();
        await usage.close();
      } finally {
        conn.close();
      }
    },
  };
}

export { openTestSqlite };
