import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { createOutcomeTap, type Outcome } from "../anomaly/outcomes.js";
import { frozenClock } from "../clock.js";
import { KeywardError } from "../errors.js";
import { silentLogger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { usageSchema } from "./usage-config.js";
import { createUsageService, MAX_BUCKETS, pieces, type UsageService } from "./usage-service.js";
import { createUsageStore } from "./usage-store.js";

/**
 * Usage counting on both engines with a frozen clock: what the tap records reaches the store on
 * an explicit flush, by minute, hour and day, and several replicas on one database add up.
 */

const T0 = Date.UTC(2026, 2, 10, 12, 0, 0);
const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

for (const e of testEngines) {
  if (e.skip) console.warn(`[usage engines] ${e.name} skipped: ${e.skip}`);
}

for (const engine of testEngines) {
  describe.skipIf(engine.skip !== undefined)(`usage on ${engine.name}`, () => {
    let db: Db;
    const clock = frozenClock(T0);
    const services: UsageService[] = [];

    beforeEach(async () => {
      db = await engine.open();
      clock.set(T0);
    });
    afterEach(async () => {
      for (const s of services.splice(0)) await s.close();
      await db.close();
    });

    /** One replica: its own tap and counters, the shared database. */
    function replica(settings: Record<string, unknown> = {}) {
      const outcomes = createOutcomeTap(silentLogger());
      const usage = createUsageService({
        store: createUsageStore(db),
        clock,
        logger: silentLogger(),
        outcomes,
        settings: usageSchema.parse({ flush_interval_ms: 10_000, ...settings }),
        pruneIntervalMs: 24 * HOUR,
      });
      services.push(usage);
      /** Records `times` outcomes; a field given as undefined is left out (no key, no agent). */
      const record = (o: { [K in keyof Outcome]?: Outcome[K] | undefined }, times = 1) => {
        for (let i = 0; i < times; i++) {
          const outcome: Record<string, unknown> = {
            at: clock.now(),
            surface: "gateway",
            code: "allowed",
            keyId: "key_a",
            owner: "consumer:acme",
            agent: "echo",
            ip: "192.0.2.1",
            ...o,
          };
          for (const [k, v] of Object.entries(outcome)) if (v === undefined) delete outcome[k];
          outcomes.record(outcome as unknown as Outcome);
        }
      };
      return { usage, record };
    }

    it("counts allowed and denied by code per minute, only once flushed", async () => {
      const { usage, record } = replica();
      record({}, 3);
      record({ code: "scope_denied", agent: "other" }, 2);
      record({ code: "rate_limited" });
      clock.advance(MIN);
      record({}, 4);
      // Outcomes without a key are not counted per key.
      record({ keyId: undefined, code: "invalid_key" }, 5);
      const range = { step: "m" as const, from: T0, to: T0 + 2 * MIN };
      expect((await usage.series("key_a", range)).every((b) => b.allowed === 0)).toBe(true);
      await usage.flush();
      expect(await usage.series("key_a", range)).toEqual([
        { t: T0, allowed: 3, denied: { scope_denied: 2, rate_limited: 1 } },
        { t: T0 + MIN, allowed: 4, denied: {} },
      ]);
      // The same counts rolled up into the hour and the day.
      expect(await usage.series("key_a", { step: "h", from: T0, to: T0 + HOUR })).toEqual([
        { t: T0, allowed: 7, denied: { scope_denied: 2, rate_limited: 1 } },
      ]);
      const day = T0 - (T0 % DAY);
      expect(await usage.series("key_a", { step: "d", from: day, to: day + DAY })).toEqual([
        { t: day, allowed: 7, denied: { scope_denied: 2, rate_limited: 1 } },
      ]);
    });

    it("puts a request on the minute its time falls in, at both edges of a bucket", async () => {
      const { usage, record } = replica();
      clock.set(T0 + HOUR - 1); // 12:59:59.999
      record({});
      clock.set(T0 + HOUR); // 13:00:00.000
      record({}, 2);
      await usage.flush();
      const minutes = await usage.series("key_a", { step: "m", from: T0 + HOUR - MIN, to: T0 + HOUR + MIN });
      expect(minutes.map((b) => b.allowed)).toEqual([1, 2]);
      const hours = await usage.series("key_a", { step: "h", from: T0, to: T0 + 2 * HOUR });
      expect(hours.map((b) => [new Date(b.t).toISOString(), b.allowed])).toEqual([
        ["2026-03-10T12:00:00.000Z", 1],
        ["2026-03-10T13:00:00.000Z", 2],
      ]);
    });

    it("rounds from down and to up to the step, and refuses more than the bucket bound", async () => {
      const { usage } = replica();
      const items = await usage.series("key_a", { step: "h", from: T0 + 10 * MIN, to: T0 + HOUR + 1 });
      expect(items.map((b) => b.t)).toEqual([T0, T0 + HOUR]);
      const tooMany = usage.series("key_a", { step: "m", from: T0, to: T0 + (MAX_BUCKETS + 1) * MIN });
      await expect(tooMany).rejects.toThrow(`spans ${MAX_BUCKETS + 1} buckets; at most ${MAX_BUCKETS}`);
      await expect(usage.series("key_a", { step: "m", from: T0 + MIN, to: T0 })).rejects.toBeInstanceOf(KeywardError);
      // Without from: the default span before now (24 hours at 1h).
      expect(await usage.series("key_a", { step: "h" })).toHaveLength(24);
    });

    it("three replicas on one database: each counts part of one key's traffic, each answers the sum", async () => {
      const replicas = [replica(), replica(), replica()];
      const shares = [7, 11, 13];
      for (const [i, r] of replicas.entries()) {
        r.record({}, shares[i]);
        r.record({ code: "quota_exceeded", ip: `198.51.100.${i}` }, i + 1);
      }
      await Promise.all(replicas.map((r) => r.usage.flush()));
      for (const r of replicas) {
        expect(await r.usage.series("key_a", { step: "m", from: T0, to: T0 + MIN })).toEqual([
          { t: T0, allowed: 31, denied: { quota_exceeded: 6 } },
        ]);
      }
      const addresses = await replicas[0]?.usage.addresses("key_a");
      expect(addresses?.find((a) => a.ip === "192.0.2.1")?.n).toBe(31);
      expect(addresses?.map((a) => a.ip).sort()).toEqual(["192.0.2.1", "198.51.100.0", "198.51.100.1", "198.51.100.2"]);
    });

    it("keeps the newest addresses per key, with first and last seen and a count", async () => {
      const { usage, record } = replica({ addresses_per_key: 3 });
      for (let i = 0; i < 5; i++) {
        record({ ip: `203.0.113.${i}` }, i + 1);
        clock.advance(1000);
      }
      await usage.flush();
      clock.advance(1000);
      record({ ip: "203.0.113.9" });
      record({ ip: "203.0.113.4" });
      await usage.flush();
      const rows = await usage.addresses("key_a");
      expect(rows.map((r) => r.ip)).toEqual(["203.0.113.4", "203.0.113.9", "203.0.113.3"]);
      expect(rows[0]).toEqual({ ip: "203.0.113.4", first_seen: T0 + 4000, last_seen: T0 + 6000, n: 6 });
    });

    it("ranks keys, agents and consumers over a range, reading days, hours and minutes", async () => {
      const { usage, record } = replica();
      record({ keyId: "key_b", owner: "consumer:beta", agent: "search" }, 5);
      record({}, 2);
      record({ code: "scope_denied" }, 1);
      clock.advance(DAY + 3 * HOUR + 7 * MIN);
      record({ keyId: "key_c", owner: "agent:bot", agent: "search" }, 1);
      await usage.flush();
      const span = { from: T0 - 5 * MIN, to: clock.now() + MIN };
      const byKey = await usage.top({ by: "key", top: 10, ...span });
      expect(byKey.items).toEqual([
        { id: "key_b", allowed: 5, denied: 0, denied_by_code: {} },
        { id: "key_a", allowed: 2, denied: 1, denied_by_code: { scope_denied: 1 } },
        { id: "key_c", allowed: 1, denied: 0, denied_by_code: {} },
      ]);
      expect((await usage.top({ by: "agent", top: 1, ...span })).items).toEqual([
        { id: "search", allowed: 6, denied: 0, denied_by_code: {} },
      ]);
      expect((await usage.top({ by: "consumer", top: 10, ...span })).items.map((g) => g.id)).toEqual([
        "consumer:beta",
        "consumer:acme",
        "agent:bot",
      ]);
      // A range that leaves the first minute out.
      const later = await usage.top({ by: "key", top: 10, from: T0 + MIN, to: span.to });
      expect(later.items).toEqual([{ id: "key_c", allowed: 1, denied: 0, denied_by_code: {} }]);
    });

    it("a denial whose key's owner was not known ranks under the owner once one is seen", async () => {
      const { usage, record } = replica();
      record({ owner: undefined, code: "key_revoked" });
      await usage.flush();
      const span = { from: T0, to: T0 + MIN };
      expect((await usage.top({ by: "consumer", top: 10, ...span })).items).toEqual([]);
      record({ code: "key_revoked" });
      await usage.flush();
      expect((await usage.top({ by: "consumer", top: 10, ...span })).items).toEqual([
        { id: "consumer:acme", allowed: 0, denied: 2, denied_by_code: { key_revoked: 2 } },
      ]);
    });

    it("prunes each bucket size past its retention, and only that", async () => {
      const { usage, record } = replica({ minute_retention_days: 1, hour_retention_days: 3, day_retention_days: 10 });
      record({}, 4);
      await usage.flush();
      const at = (step: "m" | "h" | "d") => {
        const size = step === "m" ? MIN : step === "h" ? HOUR : DAY;
        return usage.series("key_a", { step, from: T0, to: T0 + size }).then((b) => b[0]?.allowed);
      };
      clock.set(T0 + DAY);
      await usage.prune();
      expect([await at("m"), await at("h"), await at("d")]).toEqual([4, 4, 4]);
      clock.set(T0 + DAY + MIN + 1);
      await usage.prune();
      expect([await at("m"), await at("h"), await at("d")]).toEqual([0, 4, 4]);
      clock.set(T0 + 4 * DAY);
      await usage.prune();
      expect([await at("m"), await at("h"), await at("d")]).toEqual([0, 0, 4]);
      clock.set(T0 + 11 * DAY);
      await usage.prune();
      expect(await at("d")).toBe(0);
    });

    it("a flush that fails keeps its counts for the next one", async () => {
      const { usage, record } = replica();
      record({}, 3);
      await db.exec("ALTER TABLE usage_counts RENAME TO usage_counts_away");
      await usage.flush();
      await db.exec("ALTER TABLE usage_counts_away RENAME TO usage_counts");
      record({}, 1);
      await usage.flush();
      expect((await usage.series("key_a", { step: "m", from: T0, to: T0 + MIN }))[0]?.allowed).toBe(4);
    });

    it("close() writes what was counted", async () => {
      const { usage, record } = replica();
      record({}, 2);
      await usage.close();
      const reader = replica();
      expect((await reader.usage.series("key_a", { step: "m", from: T0, to: T0 + MIN }))[0]?.allowed).toBe(2);
    });
  });
}

describe("pieces", () => {
  it("reads whole days from days, whole hours from hours, the edges from minutes", () => {
    const from = Date.UTC(2026, 0, 1, 22, 30);
    const to = Date.UTC(2026, 0, 3, 1, 15);
    expect(pieces(from, to, ["d", "h", "m"])).toEqual([
      { step: "m", from, to: Date.UTC(2026, 0, 1, 23) },
      { step: "h", from: Date.UTC(2026, 0, 1, 23), to: Date.UTC(2026, 0, 2) },
      { step: "d", from: Date.UTC(2026, 0, 2), to: Date.UTC(2026, 0, 3) },
      { step: "h", from: Date.UTC(2026, 0, 3), to: Date.UTC(2026, 0, 3, 1) },
      { step: "m", from: Date.UTC(2026, 0, 3, 1), to },
    ]);
  });
});
