import { describe, expect, it } from "vitest";
import { createMemoryPermitBank } from "./memory-permit-bank.js";
import type { PermitCounter } from "./permit-bank.js";

const rate = (windowStart: number, limit = 10): PermitCounter => ({
  lineage: "key_a",
  kind: "rate",
  windowStart,
  windowMs: 1000,
  limit,
});
const quota = (limit: number): PermitCounter => ({
  lineage: "key_a",
  kind: "quota",
  windowStart: 0,
  windowMs: Number.POSITIVE_INFINITY,
  limit,
});

describe("memory permit bank", () => {
  it("never grants past the limit, however the takes are split", async () => {
    const bank = createMemoryPermitBank({ now: () => 500 });
    const grants = await Promise.all([4, 4, 4, 1].map((want) => bank.take(rate(0), want)));
    expect(grants.map((g) => g.granted)).toEqual([4, 4, 2, 0]);
    expect(grants.at(-1)?.used).toBe(10);
    await bank.close();
  });

  it("takes a give back only from the counter incarnation that granted it", async () => {
    let t = 0;
    const bank = createMemoryPermitBank({ now: () => t, quotaIdleMs: 1000 });
    const first = await bank.take(quota(10), 10, async () => 0);
    await bank.give(quota(10), 3, first.epoch);
    expect((await bank.take(quota(10), 5)).granted).toBe(3);
    // Idle past the idle time: forgotten, then seeded again from the store, which counts 4 used.
    t = 5_000;
    const again = await bank.take(quota(10), 2, async () => 4);
    expect(again).toMatchObject({ granted: 2, used: 6 });
    expect(again.epoch).not.toBe(first.epoch);
    // A late give to the old incarnation would let those permits be granted twice: ignored.
    await bank.give(quota(10), 10, first.epoch);
    expect((await bank.take(quota(10), 10)).granted).toBe(4);
    await bank.close();
  });

  it("forgets a rate window once it ended", async () => {
    let t = 500;
    const bank = createMemoryPermitBank({ now: () => t });
    expect((await bank.take(rate(0), 10)).granted).toBe(10);
    t = 1000;
    expect((await bank.take(rate(1000), 10)).granted).toBe(10);
    expect((await bank.take(rate(0), 1)).granted).toBe(0);
    await bank.close();
  });

  it("never lowers a counter below zero", async () => {
    const bank = createMemoryPermitBank({ now: () => 500 });
    const g = await bank.take(rate(0), 2);
    await bank.give(rate(0), 50, g.epoch);
    expect((await bank.take(rate(0), 50)).granted).toBe(10);
    await bank.close();
  });

  it("seeds a quota counter from the store once, however many take at the same time", async () => {
    const bank = createMemoryPermitBank({ now: () => 500 });
    let reads = 0;
    const seed = async () => {
      reads++;
      return 7;
    };
    const grants = await Promise.all([2, 2, 2].map((want) => bank.take(quota(10), want, seed)));
    expect(reads).toBe(1);
    expect(grants.map((g) => g.granted).sort()).toEqual([0, 1, 2]);
    await bank.close();
  });

  it("reseeds a quota counter left idle past the idle time", async () => {
    let t = 0;
    const bank = createMemoryPermitBank({ now: () => t, quotaIdleMs: 1000 });
    await bank.take(quota(10), 4, async () => 0);
    t = 999;
    expect((await bank.take(quota(10), 1, async () => 0)).used).toBe(5);
    t = 999 + 1000;
    expect((await bank.take(quota(10), 1, async () => 3)).used).toBe(4);
    await bank.close();
  });

  it("refuses takes once closed", async () => {
    const bank = createMemoryPermitBank();
    await bank.close();
    await expect(bank.take(rate(0), 1)).rejects.toThrow("closed");
  });
});
