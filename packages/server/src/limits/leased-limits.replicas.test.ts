import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  clockNow,
  type LimitedKey,
  openTestSqlite,
  redisUrl,
  type TestReplica,
  testPrefix,
  testReplica,
} from "../../test-support/leased-replicas.js";
import type { Db } from "../store/db.js";
import { type LeaseSettings, maxLease, overshootBound } from "./lease-sizing.js";

// The overshoot bound of permit leases (lease-sizing.ts, docs/operations.md), proven on one real
// Redis: three leased-limits instances — three replicas — hammering one key.
if (!redisUrl) console.warn("[leased-limits.replicas] skipped: KEYWARD_TEST_REDIS_URL is not set");

const SETTINGS: LeaseSettings = { replicas: 3, fraction: 0.1, leaseMs: 100 };
const LIMIT = 2700;
const BOUND = overshootBound(LIMIT, SETTINGS);
const WINDOW = 1000;
const T0 = Date.UTC(2030, 0, 1);

describe.skipIf(!redisUrl)("leased limits: three replicas on one Redis", () => {
  let db: Db;
  const open: TestReplica[] = [];
  beforeAll(async () => {
    db = await openTestSqlite();
  });
  afterAll(async () => {
    for (const r of open) await r.close();
    await db.close();
  });

  async function three(prefix = testPrefix()) {
    const rs = [];
    for (let i = 0; i < 3; i++) rs.push(await testReplica({ db, prefix, settings: SETTINGS }));
    open.push(...rs);
    return rs;
  }

  /**
   * Virtual milliseconds [from, to): each step, every replica answers `perStep` concurrent requests
   * at its own clock (true time − its lag). Returns the true time of every admitted request.
   */
  async function hammer(
    rs: TestReplica[],
    key: LimitedKey,
    from: number,
    to: number,
    opts: { perStep: number; lag?: number[]; admitted?: (out: Awaited<ReturnType<TestReplica["check"]>>) => boolean },
  ) {
    const admittedAt: number[] = [];
    const admitted = opts.admitted ?? ((out) => out.rate?.allowed === true);
    for (let t = from; t < to; t++) {
      clockNow.t = t;
      await Promise.all(
        rs.flatMap((r, i) =>
          Array.from({ length: opts.perStep }, async () => {
            if (admitted(await r.check(key, t - (opts.lag?.[i] ?? 0)))) admittedAt.push(t);
          }),
        ),
      );
    }
    return admittedAt;
  }

  const perWindow = (times: number[]) => {
    const counts = new Map<number, number>();
    for (const t of times) counts.set(t - (t % WINDOW), (counts.get(t - (t % WINDOW)) ?? 0) + 1);
    return counts;
  };

  it("states a bound of at most the configured fraction of the limit", () => {
    expect(maxLease(LIMIT, SETTINGS)).toBe(90);
    expect(BOUND).toBe(270);
    expect(BOUND).toBeLessThanOrEqual(LIMIT * SETTINGS.fraction);
  });

  it("with clocks in step, admits exactly the limit in each window, asking Redis once per lease", async () => {
    const rs = await three();
    const key = { lineage: "key_R1", rateLimit: { limit: LIMIT, window_s: WINDOW / 1000 }, quota: null };
    // 3 windows; 3 replicas × 1 request per ms = 3000 a second against a limit of 2700.
    const times = await hammer(rs, key, T0, T0 + 3 * WINDOW, { perStep: 1 });
    const calls = rs.reduce((n, r) => n + r.bankCalls.n, 0);
    expect([...perWindow(times).values()]).toEqual([LIMIT, LIMIT, LIMIT]);
    // 9000 requests, one script call per lease: leases of up to 90 permits, refilled at half.
    expect(calls).toBeLessThan(450);
    console.log(`[leased-limits.replicas] 9000 requests, ${calls} bank calls`);
  });

  it("with one replica's clock 80 ms behind, no window admits more than limit + bound", async () => {
    const rs = await three();
    // Demand (3 a ms) at the limit: windows are used up only near their end, so the lagging
    // replica still holds permits of a window when the others start the next one.
    const limit = 3000;
    const bound = overshootBound(limit, SETTINGS);
    const key = { lineage: "key_R2", rateLimit: { limit, window_s: WINDOW / 1000 }, quota: null };
    const times = await hammer(rs, key, T0 + 80, T0 + 4 * WINDOW, { perStep: 1, lag: [0, 0, 80] });
    const counts = perWindow(times);
    console.log(`[leased-limits.replicas] per window with a lagging clock: ${[...counts.values()].join(", ")}`);
    for (const [start, n] of counts) {
      expect.soft(n, `window starting ${start - T0} ms`).toBeLessThanOrEqual(limit + bound);
    }
  });

  it("a replica that dies holding a lease loses at most that lease: the others admit the rest", async () => {
    const rs = await three();
    const key = { lineage: "key_R4", rateLimit: { limit: LIMIT, window_s: WINDOW / 1000 }, quota: null };
    const [dying, ...rest] = rs as [TestReplica, TestReplica, TestReplica];
    const before = await hammer([dying], key, T0, T0 + 300, { perStep: 1 });
    // Killed: its connection drops, nothing is given back.
    dying.redis.disconnect();
    open.splice(open.indexOf(dying), 1);
    const after = await hammer(rest, key, T0 + 300, T0 + WINDOW, { perStep: 2 });
    const total = before.length + after.length;
    console.log(`[leased-limits.replicas] a replica died holding a lease: ${total} of ${LIMIT} admitted`);
    expect(total).toBeLessThanOrEqual(LIMIT);
    expect(total).toBeGreaterThanOrEqual(LIMIT - maxLease(LIMIT, SETTINGS));
  });

  it("a quota counter Redis lost mid-period is seeded from the store: at most limit + bound in all", async () => {
    const prefix = testPrefix();
    const rs = await three(prefix);
    const quota = { limit: LIMIT, period: "total" as const };
    const key = { lineage: "key_R3", rateLimit: null, quota };
    const ok = (out: Awaited<ReturnType<TestReplica["check"]>>) => out.quota?.ok === true;
    const first = await hammer(rs, key, T0, T0 + 400, { perStep: 1, admitted: ok });
    expect(first).toHaveLength(1200);
    // Usage is written within the flush interval; then Redis loses the counter (restart, eviction)
    // while every replica still holds a lease.
    for (const r of rs) await r.usage.flush();
    const names = await (rs[0] as TestReplica).redis.keys(`${prefix}q:{key_R3}*`);
    expect(names).toHaveLength(1);
    await rs[0]?.redis.del(...names);
    const second = await hammer(rs, key, T0 + 400, T0 + 1400, { perStep: 1, admitted: ok });
    const total = first.length + second.length;
    console.log(`[leased-limits.replicas] quota ${LIMIT} after a lost counter: ${total} admitted`);
    expect(total).toBeGreaterThanOrEqual(LIMIT);
    expect(total).toBeLessThanOrEqual(LIMIT + BOUND);
  });
});
