import { describe, expect, it } from "vitest";
import { openTestSqlite } from "../../test-support/databases.js";
import { frozenClock } from "../clock.js";
import { silentLogger } from "../ops/logger.js";
import { overshootBound } from "./lease-sizing.js";
import { createLeasedLimits } from "./leased-limits.js";
import { createMemoryPermitBank } from "./memory-permit-bank.js";
import type { PermitBank } from "./permit-bank.js";
import { createMemoryRateLimiter } from "./rate-limiter.js";
import { createUsageTracker } from "./usage.js";

const T0 = Date.UTC(2030, 0, 1, 0, 0, 20);

/** A bank that counts the calls it answers. */
function countingBank(bank: PermitBank) {
  const calls = { take: 0, give: 0 };
  const counted: PermitBank = {
    take: (c, want, seed) => {
      calls.take++;
      return bank.take(c, want, seed);
    },
    give: (c, n, e) => {
      calls.give++;
      return bank.give(c, n, e);
    },
    close: () => bank.close(),
  };
  return { bank: counted, calls };
}

async function replicaOn(bank: PermitBank, replicas = 1) {
  const db = await openTestSqlite();
  const usage = createUsageTracker({ db, clock: frozenClock(T0), logger: silentLogger(), flushIntervalMs: 3_600_000 });
  const local = createMemoryRateLimiter();
  const limits = createLeasedLimits({
    bank,
    usage,
    local,
    fallback: "closed",
    onUnavailable: () => {},
    settings: { replicas },
  });
  return {
    limits,
    usage,
    close: async () => {
      await limits.close();
      local.close();
      await usage.close();
      await db.close();
    },
  };
}

const rateKey = (limit: number) => ({ lineage: "key_L", rateLimit: { limit, window_s: 60 }, quota: null });

describe("leased limits", () => {
  it("admits exactly the limit of a window, answering most requests without the bank", async () => {
    const { bank, calls } = countingBank(createMemoryPermitBank({ now: () => T0 }));
    const p = await replicaOn(bank);
    const answers = [];
    for (let i = 0; i < 1200; i++) answers.push(await p.limits.check(rateKey(1000), T0 + i));
    expect(answers.filter((a) => a.rate?.allowed)).toHaveLength(1000);
    expect(answers[999]?.rate).toMatchObject({ allowed: true, remaining: 0 });
    expect(answers[1000]?.rate).toMatchObject({ allowed: false, remaining: 0, limit: 1000 });
    expect(calls.take).toBeLessThan(200);
    await p.close();
  });

  it("answers from a held lease synchronously (no promise on the hot path), rate limit and quota alike", async () => {
    const p = await replicaOn(createMemoryPermitBank({ now: () => T0 }));
    const key = {
      lineage: "key_S",
      rateLimit: { limit: 1000, window_s: 60 },
      quota: { limit: 5000, period: "month" as const },
    };
    // The first request waits for both leases; the next ones are answered from memory.
    expect(p.limits.check(key, T0)).toBeInstanceOf(Promise);
    await p.limits.check(key, T0);
    let sync = 0;
    for (let i = 1; i <= 20; i++) {
      const answer = p.limits.check(key, T0 + i);
      if (!(answer instanceof Promise)) {
        sync++;
        expect(answer).toMatchObject({ rate: { allowed: true, limit: 1000 }, quota: { ok: true } });
      } else await answer;
    }
    expect(sync).toBe(20);
    await p.close();
  });

  it("answers concurrent requests from one refill when nothing is held, without admitting past the limit", async () => {
    const p = await replicaOn(createMemoryPermitBank({ now: () => T0 }));
    const answers = await Promise.all(Array.from({ length: 300 }, () => p.limits.check(rateKey(200), T0)));
    expect(answers.filter((a) => a.rate?.allowed)).toHaveLength(200);
    await p.close();
  });

  it("takes one permit per request when a lease would make the bound too loose (small limits)", async () => {
    const { bank, calls } = countingBank(createMemoryPermitBank({ now: () => T0 }));
    const p = await replicaOn(bank, 3);
    expect(overshootBound(50, { replicas: 3, fraction: 0.1, leaseMs: 100 })).toBe(0);
    let admitted = 0;
    for (let i = 0; i < 60; i++) if ((await p.limits.check(rateKey(50), T0)).rate?.allowed) admitted++;
    expect(admitted).toBe(50);
    expect(calls.take).toBe(60);
    await p.close();
  });

  it("starts a new lease in the next window; the last window's permits are not used there", async () => {
    const p = await replicaOn(createMemoryPermitBank({ now: () => T0 }));
    for (let i = 0; i < 10; i++) await p.limits.check(rateKey(1000), T0);
    let admitted = 0;
    for (let i = 0; i < 1100; i++) if ((await p.limits.check(rateKey(1000), T0 + 60_000)).rate?.allowed) admitted++;
    expect(admitted).toBe(1000);
    await p.close();
  });

  it("a refused rate limit leaves the quota alone; the quota is counted exactly", async () => {
    const p = await replicaOn(createMemoryPermitBank({ now: () => T0 }));
    const key = {
      lineage: "key_Q",
      rateLimit: { limit: 5, window_s: 60 },
      quota: { limit: 300, period: "total" as const },
    };
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(await p.limits.check(key, T0));
    expect(answers.map((a) => a.quota?.ok ?? null)).toEqual([true, true, true, true, true, null, null, null]);
    const quotaOnly = { lineage: "key_Q", rateLimit: null, quota: { limit: 300, period: "total" as const } };
    let ok = 0;
    for (let i = 0; i < 400; i++) if ((await p.limits.check(quotaOnly, T0)).quota?.ok) ok++;
    expect(ok).toBe(295);
    expect(await p.limits.check(quotaOnly, T0)).toMatchObject({ quota: { ok: false, retryAfterS: null } });
    await p.close();
  });

  it("gives back what it holds on close, so the next process can use it", async () => {
    const bank = createMemoryPermitBank({ now: () => T0 });
    const a = await replicaOn(bank);
    for (let i = 0; i < 100; i++) await a.limits.check(rateKey(1000), T0 + i);
    await a.close();
    const b = await replicaOn(bank);
    let admitted = 0;
    for (let i = 0; i < 1000; i++) if ((await b.limits.check(rateKey(1000), T0 + 200 + i)).rate?.allowed) admitted++;
    expect(admitted).toBe(900);
    await b.close();
  });
});
