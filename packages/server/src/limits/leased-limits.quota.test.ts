import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  openTestSqlite,
  redisUrl,
  type TestReplica,
  testPrefix,
  testReplica,
} from "../../test-support/leased-replicas.js";
import type { Db } from "../store/db.js";
import type { LeaseSettings } from "./lease-sizing.js";

// Quotas stay exact across a restart with leases out: the leaving process gives back what it
// holds and writes its usage; the next one finds Redis's count, or seeds it from the store.
if (!redisUrl) console.warn("[leased-limits.quota] skipped: KEYWARD_TEST_REDIS_URL is not set");

const SETTINGS: LeaseSettings = { replicas: 1, fraction: 0.1, leaseMs: 100 };
const T0 = Date.UTC(2030, 0, 1);

describe.skipIf(!redisUrl)("leased quotas across a restart", () => {
  let db: Db;
  const open: TestReplica[] = [];
  beforeAll(async () => {
    db = await openTestSqlite();
  });
  afterAll(async () => {
    for (const r of open) await r.close().catch(() => {});
    await db.close();
  });

  async function admitted(r: TestReplica, lineage: string, n: number) {
    const key = { lineage, rateLimit: null, quota: { limit: 3000, period: "total" as const } };
    let ok = 0;
    for (let i = 0; i < n; i++) {
      const out = await Promise.all(Array.from({ length: 10 }, () => r.check(key, T0 + i)));
      ok += out.filter((o) => o.quota?.ok).length;
    }
    return ok;
  }

  const storeCount = async (lineage: string) =>
    Number((await db.query<{ used: number }>("SELECT used FROM quota_usage WHERE key_id = $1", [lineage]))[0]?.used);

  for (const redisLost of [false, true]) {
    it(`admits exactly the quota across a restart${redisLost ? " that Redis lost everything in too" : ""}`, async () => {
      const prefix = testPrefix();
      const lineage = redisLost ? "key_QL" : "key_QR";
      const a = await testReplica({ db, prefix, settings: SETTINGS });
      expect(await admitted(a, lineage, 123)).toBe(1230);
      await a.close();
      expect(await storeCount(lineage)).toBe(1230);
      const b = await testReplica({ db, prefix, settings: SETTINGS });
      open.push(b);
      if (redisLost) {
        const names = await b.redis.keys(`${prefix}*`);
        expect(names.length).toBeGreaterThan(0);
        await b.redis.del(...names);
      }
      expect(await admitted(b, lineage, 200)).toBe(3000 - 1230);
      await b.usage.flush();
      expect(await storeCount(lineage)).toBe(3000);
    });
  }
});
