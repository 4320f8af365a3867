import { describe, expect, it } from "vitest";
import { openTestSqlite } from "../../test-support/databases.js";
import { frozenClock } from "../clock.js";
import { silentLogger } from "../ops/logger.js";
import { createMemoryRateLimiter } from "./rate-limiter.js";
import type { LimitsRequest, RedisLimits } from "./redis-limits.js";
import { createSharedLimits } from "./shared-limits.js";
import { createUsageTracker } from "./usage.js";

// Issue 18 finding 8a: with rate_limit_fallback=local, the local window started at zero after
// Redis had already counted (part of) it, so each replica admitted N more on top. It now starts
// from the count Redis last gave this replica, for that lineage and window only.
const T0 = Date.UTC(2030, 0, 1, 0, 0, 20);
const key = { lineage: "key_S", rateLimit: { limit: 6, window_s: 60 }, quota: null };

/** A Redis counting one window per lineage, as the script does, that can be cut off. */
function fakeRedis() {
  const counts = new Map<string, number>();
  const state = { up: true };
  const redis: RedisLimits = {
    async check(req: LimitsRequest) {
      if (!state.up) throw new Error("connect ECONNREFUSED");
      const rate = req.rate;
      if (!rate) return { status: "checked", rate: undefined, quota: undefined };
      const name = `${req.lineage}:${rate.start}`;
      const used = counts.get(name) ?? 0;
      if (used >= rate.limit) return { status: "checked", rate: { allowed: false, used }, quota: undefined };
      counts.set(name, used + 1);
      return { status: "checked", rate: { allowed: true, used: used + 1 }, quota: undefined };
    },
  };
  return { redis, state };
}

async function replica(redis: RedisLimits) {
  const db = await openTestSqlite();
  const usage = createUsageTracker({ db, clock: frozenClock(T0), logger: silentLogger(), flushIntervalMs: 3_600_000 });
  const local = createMemoryRateLimiter();
  const shared = createSharedLimits({ redis, usage, local, fallback: "local", onUnavailable: () => {} });
  return {
    shared,
    admitted: async (n: number, now = T0) => {
      let ok = 0;
      for (let i = 0; i < n; i++) if ((await shared.check(key, now)).rate?.allowed) ok++;
      return ok;
    },
    close: async () => {
      local.close();
      await usage.close();
      await db.close();
    },
  };
}

describe("rate_limit_fallback=local starts from the shared window", () => {
  it("two replicas admit at most R × N in a window Redis left mid-way (was N + R × N)", async () => {
    const { redis, state } = fakeRedis();
    const a = await replica(redis);
    const b = await replica(redis);
    expect(await a.admitted(4)).toBe(4); // Redis: 4
    expect(await b.admitted(2)).toBe(2); // Redis: 6, the limit; b saw 6, a last saw 4
    state.up = false;
    // a goes on from 4 (2 more), b from 6 (none): 8 in all, within R × N = 12 (it was 6 + 12 = 18).
    expect(await a.admitted(10)).toBe(2);
    expect(await b.admitted(10)).toBe(0);
    const after = await a.shared.check(key, T0);
    expect(after.rate).toMatchObject({ allowed: false, remaining: 0, resetS: 40 });
    await a.close();
    await b.close();
  });

  it("remembers the count for its window only: the next window starts at zero", async () => {
    const { redis, state } = fakeRedis();
    const a = await replica(redis);
    expect(await a.admitted(6)).toBe(6);
    state.up = false;
    expect(await a.admitted(3)).toBe(0);
    expect(await a.admitted(7, T0 + 60_000)).toBe(6);
    await a.close();
  });

  it("never lowers a local count that is already higher", async () => {
    const local = createMemoryRateLimiter();
    for (let i = 0; i < 4; i++) local.hit("k", key.rateLimit, T0);
    local.seed?.("k", key.rateLimit, T0, 2);
    expect((await local.hit("k", key.rateLimit, T0)).remaining).toBe(1);
    local.seed?.("k", key.rateLimit, T0, 99);
    expect((await local.hit("k", key.rateLimit, T0)).allowed).toBe(false);
    local.close();
  });
});
