import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, metric, newKey, redisUp, setUpEcho } from "../../test-support/limits-gateway.js";
import { redisServerSkip, startRedisServer } from "../../test-support/redis-server.js";
import type { TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";
import { startUpstream } from "../../test-support/upstream.js";
import { frozenClock } from "../clock.js";

// One Keyward with KEYWARD_REDIS_URL, started the way a user starts it: limits and quotas counted
// in Redis (RateLimit headers, a restart of Keyward resets nothing), then Redis killed and
// restarted under it (a redis-server of the test's own, keeping nothing on disk, like CI's).
const redisUrl = process.env.KEYWARD_TEST_REDIS_URL;
const skip = redisUrl ? redisServerSkip : "KEYWARD_TEST_REDIS_URL is not set";
if (skip) console.warn(`[redis-limits] Redis gateway tests skipped: ${skip}`);

// 20 s into a minute: a 60 s window has 40 s left, whatever the wall clock says.
const T0 = Date.UTC(2030, 0, 1, 0, 0, 20);
const prefix = `kwtest:${randomBytes(6).toString("hex")}:`;

let up: Awaited<ReturnType<typeof startUpstream>>;
const dirs: string[] = [];
const servers: TestServer[] = [];

async function start(env: Record<string, string>, dataDir?: string): Promise<TestServer> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "keyward-rl-"));
  if (!dataDir) dirs.push(dir);
  const kw = await startTestServerAt(dir, env, { clock: frozenClock(T0), redisKeyPrefix: prefix });
  servers.push(kw);
  await setUpEcho(kw, up.url);
  return kw;
}

describe.skipIf(skip)("rate limits and quotas in Redis, one gateway", () => {
  let probe: Redis;

  beforeAll(async () => {
    up = await startUpstream();
    probe = new Redis(redisUrl as string);
  });
  afterAll(async () => {
    for (const s of servers) await s.close().catch(() => {});
    await up?.close();
    const keys = await probe.keys(`${prefix}*`);
    if (keys.length > 0) await probe.del(...keys);
    probe.disconnect();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("counts a rate limit in Redis: RateLimit headers count down, 429 at the limit, a restart resets nothing", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "keyward-rl-"));
    dirs.push(dataDir);
    const kw = await start({ KEYWARD_REDIS_URL: redisUrl as string }, dataDir);
    const k = await newKey(kw, { rate_limit: { limit: 3, window_s: 60 } });

    const seen = [];
    for (let i = 0; i < 3; i++) seen.push(await call(kw, k.secret));
    expect(seen.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(seen.map((a) => a.headers.get("ratelimit-remaining"))).toEqual(["2", "1", "0"]);
    for (const a of seen) {
      expect(a.headers.get("ratelimit-limit")).toBe("3");
      expect(a.headers.get("ratelimit-reset")).toBe("40");
    }
    const refused = await call(kw, k.secret);
    expect([refused.status, refused.code]).toEqual([429, "rate_limited"]);
    expect(refused.headers.get("retry-after")).toBe("40");
    expect(refused.headers.get("ratelimit-remaining")).toBe("0");

    // The window lives in Redis under its own name, with a TTL.
    const windowKey = `${prefix}rl:{${k.id}}:60:${(T0 - 20_000) / 1000}`;
    expect(await probe.get(windowKey)).toBe("3");
    expect(await probe.pttl(windowKey)).toBeGreaterThan(0);

    await kw.close();
    const again = await start({ KEYWARD_REDIS_URL: redisUrl as string }, dataDir);
    expect((await call(again, k.secret)).code).toBe("rate_limited");
  });

  describe("Redis killed and restarted under a running Keyward", () => {
    let redis: Awaited<ReturnType<typeof startRedisServer>>;
    beforeAll(async () => {
      redis = await startRedisServer();
    });
    afterAll(async () => {
      await redis?.close();
    });

    it("closed (default): keys with limits get 503 rate_limit_unavailable, others pass; recovers by itself", async () => {
      await redis.restart(); // a no-op while it runs
      const kw = await start({ KEYWARD_REDIS_URL: redis.url });
      await redisUp(kw);
      const limited = await newKey(kw, { rate_limit: { limit: 5, window_s: 60 } });
      const quotaOnly = await newKey(kw, { quota: { limit: 10, period: "total" } });
      const free = await newKey(kw);
      for (const k of [limited, quotaOnly, free]) expect((await call(kw, k.secret)).status).toBe(200);

      await redis.kill();
      for (const k of [limited, quotaOnly]) {
        const a = await call(kw, k.secret);
        expect([a.status, a.code]).toEqual([503, "rate_limit_unavailable"]);
        expect(a.headers.get("retry-after")).toBe("1");
      }
      expect((await call(kw, free.secret)).status).toBe(200);
      expect(await metric(kw, 'keyward_limits_unavailable_total{fallback="closed"}')).toBe(2);
      expect(await metric(kw, 'keyward_gateway_decisions_total{code="rate_limit_unavailable"}')).toBe(2);
      expect(await metric(kw, "keyward_limits_redis_up")).toBe(0);

      // Redis returns empty: no restart of Keyward. The window starts again; the quota counter is
      // re-seeded from the store (1 use, flushed first), so the refused requests were not counted.
      await redis.restart();
      await redisUp(kw);
      const back = await call(kw, limited.secret);
      expect(back.status).toBe(200);
      expect(back.headers.get("ratelimit-remaining")).toBe("4");
      expect((await call(kw, quotaOnly.secret)).status).toBe(200);
      const direct = new Redis(redis.url);
      try {
        expect(await direct.get(`${prefix}q:{${quotaOnly.id}}:0`)).toBe("2");
      } finally {
        direct.disconnect();
      }
    });

    it("a quota survives Redis losing everything: re-seeded from the store, exactly the limit is admitted", async () => {
      const kw = await start({ KEYWARD_REDIS_URL: redis.url });
      await redisUp(kw);
      const k = await newKey(kw, { quota: { limit: 3, period: "total" } });
      expect((await call(kw, k.secret)).status).toBe(200);
      expect((await call(kw, k.secret)).status).toBe(200);

      await redis.kill();
      await redis.restart();
      await redisUp(kw);
      expect((await call(kw, k.secret)).status).toBe(200);
      const refused = await call(kw, k.secret);
      expect([refused.status, refused.code]).toEqual([429, "quota_exceeded"]);
      expect(refused.headers.get("retry-after")).toBeNull();
    });

    it("local: limits hold per replica while Redis is down (quota from the last global count), then Redis again", async () => {
      const kw = await start({ KEYWARD_REDIS_URL: redis.url, KEYWARD_RATE_LIMIT_FALLBACK: "local" });
      await redisUp(kw);
      const limited = await newKey(kw, { rate_limit: { limit: 3, window_s: 60 } });
      const quota = await newKey(kw, { quota: { limit: 3, period: "total" } });
      expect((await call(kw, limited.secret)).headers.get("ratelimit-remaining")).toBe("2");
      expect((await call(kw, quota.secret)).status).toBe(200);
      expect((await call(kw, quota.secret)).status).toBe(200);

      await redis.kill();
      // The local window goes on from the 1 Redis last reported for it (issue 18 finding 8a).
      const local = [];
      for (let i = 0; i < 4; i++) local.push(await call(kw, limited.secret));
      expect(local.map((a) => a.status)).toEqual([200, 200, 429, 429]);
      expect(local.map((a) => a.headers.get("ratelimit-remaining"))).toEqual(["1", "0", "0", "0"]);
      // The quota goes on from the 2 Redis last reported: one more, then refused.
      expect((await call(kw, quota.secret)).status).toBe(200);
      expect((await call(kw, quota.secret)).code).toBe("quota_exceeded");
      expect(await metric(kw, 'keyward_limits_unavailable_total{fallback="local"}')).toBe(6);

      await redis.restart();
      await redisUp(kw);
      // Back on Redis (empty): the quota is re-seeded from the store, which has all 3 uses.
      expect((await call(kw, quota.secret)).code).toBe("quota_exceeded");
      expect((await call(kw, limited.secret)).headers.get("ratelimit-remaining")).toBe("2");
    });

    it("a Redis that hangs: refused within the command timeout, served again once it answers", async () => {
      await redis.restart();
      const kw = await start({ KEYWARD_REDIS_URL: redis.url });
      await redisUp(kw);
      // A limit under 20 is not leased (limits/lease-sizing.ts): every request asks Redis. Leased
      // keys get the fallback once their lease is used: limits/leased-limits.error.test.ts.
      const k = await newKey(kw, { rate_limit: { limit: 19, window_s: 60 } });
      expect((await call(kw, k.secret)).status).toBe(200);
      redis.pause();
      try {
        const started = performance.now();
        const a = await call(kw, k.secret);
        expect([a.status, a.code]).toEqual([503, "rate_limit_unavailable"]);
        // Bounded by commandTimeout (500 ms), with room for a busy machine; without it: never.
        expect(performance.now() - started).toBeLessThan(5000);
      } finally {
        redis.resume();
      }
      const back = await call(kw, k.secret);
      expect(back.status).toBe(200);
      // The timed-out command ran once Redis woke up: counted in Redis, refused here (never resent).
      expect(back.headers.get("ratelimit-remaining")).toBe("16");
    });

    it("Redis killed in the middle of a burst: every answer is 200 or 503 rate_limit_unavailable, never a 500", async () => {
      await redis.restart();
      const kw = await start({ KEYWARD_REDIS_URL: redis.url });
      await redisUp(kw);
      const k = await newKey(kw, {
        rate_limit: { limit: 1_000_000, window_s: 60 },
        quota: { limit: 1_000_000, period: "day" },
      });
      const burst = Array.from({ length: 60 }, (_, i) =>
        (i === 20 ? redis.kill() : Promise.resolve()).then(() => call(kw, k.secret)),
      );
      const answers = await Promise.all(burst);
      for (const a of answers) expect([200, 503]).toContain(a.status);
      for (const a of answers.filter((x) => x.status === 503)) expect(a.code).toBe("rate_limit_unavailable");
      expect(answers.some((a) => a.status === 503)).toBe(true);
      expect((await call(kw, k.secret)).code).toBe("rate_limit_unavailable");
    });
  });
});
