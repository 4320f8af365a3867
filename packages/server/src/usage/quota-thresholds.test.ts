import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";
import { startWebhookReceiver } from "../../test-support/webhook-receiver.js";
import { frozenClock } from "../clock.js";
import type { QuotaUse } from "../limits/usage.js";
import { silentLogger } from "../ops/logger.js";
import type { Db } from "../store/db.js";
import { createOutboxStore } from "../webhooks/outbox-store.js";
import { createWebhooksService } from "../webhooks/webhooks-service.js";
import { createQuotaThresholds } from "./quota-thresholds.js";
import { createUsageStore } from "./usage-store.js";

/** quota.threshold at 80 % and 100 %: once per key, period and threshold, whoever sees the crossing. */

const T0 = Date.UTC(2026, 2, 10);

for (const engine of testEngines) {
  describe.skipIf(engine.skip !== undefined)(`quota thresholds on ${engine.name}`, () => {
    let db: Db;
    beforeEach(async () => {
      db = await engine.open();
    });
    afterEach(() => db.close());

    /** A replica's thresholds, announcing into the real outbox of the shared database. */
    function replica() {
      const webhooks = createWebhooksService({
        db,
        store: createOutboxStore(db),
        clock: frozenClock(T0),
        endpoints: [
          {
            url: "http://127.0.0.1:9/hook",
            secret: `whsec_${randomBytes(24).toString("base64")}`,
            events: ["quota.threshold"],
          },
        ],
        audit: recordingAudit(),
      });
      return createQuotaThresholds({
        db,
        store: createUsageStore(db),
        clock: frozenClock(T0),
        logger: silentLogger(),
        emitter: webhooks,
      });
    }

    const queued = async () =>
      (await db.query<{ body: string }>("SELECT body FROM webhook_outbox WHERE type = 'quota.threshold'")).map(
        (r) => JSON.parse(r.body).data as Record<string, unknown>,
      );

    it("three replicas crossing the same thresholds at once announce each one once", async () => {
      const replicas = [replica(), replica(), replica()];
      const use = (used: number): QuotaUse => ({ lineage: "key_a", period: "day", periodStart: T0, used, limit: 10 });
      for (const used of [7, 8, 9, 10, 10]) for (const r of replicas) r.observe(use(used));
      await vi.waitFor(async () => expect(await queued()).toHaveLength(2));
      const events = (await queued()).sort((a, b) => Number(a.threshold) - Number(b.threshold));
      expect(events).toEqual([
        { key_id: "key_a", threshold: 80, used: 8, limit: 10, period: "day", period_start: "2026-03-10T00:00:00.000Z" },
        {
          key_id: "key_a",
          threshold: 100,
          used: 10,
          limit: 10,
          period: "day",
          period_start: "2026-03-10T00:00:00.000Z",
        },
      ]);
      // The next period announces again.
      replicas[0]?.observe({ ...use(9), periodStart: T0 + 86_400_000 });
      await vi.waitFor(async () => expect(await queued()).toHaveLength(3));
    });

    it("a use that jumps past both thresholds announces both", async () => {
      replica().observe({ lineage: "key_b", period: "total", periodStart: 0, used: 50, limit: 50 });
      await vi.waitFor(async () => expect((await queued()).map((e) => e.threshold).sort()).toEqual([100, 80]));
    });
  });
}

describe("quota.threshold through a running Keyward", () => {
  const cleanups: Array<() => Promise<void>> = [];
  let kw: TestServer;
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("a key with a quota of 5 a day: one signed event at the 4th request, one at the 5th, none after", async () => {
    const receiver = await startWebhookReceiver();
    cleanups.push(() => receiver.close());
    const up = await startUpstream();
    cleanups.push(() => up.close());
    kw = await startTestServer({
      KEYWARD_ALERT_WEBHOOK: `${receiver.url}/hook`,
      KEYWARD_ALERT_WEBHOOK_SECRET: `whsec_${randomBytes(32).toString("base64")}`,
    });
    cleanups.push(() => kw.close());
    await kw.admin("POST", "/agents", { name: "echo", upstream: up.url });
    await kw.admin("POST", "/consumers", { name: "acme" });
    const issued = await kw.admin("POST", "/keys", {
      owner: "consumer:acme",
      scopes: ["agent:echo"],
      quota: { limit: 5, period: "day" },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await fetch(`${kw.url}/agents/echo/x`, {
        headers: { authorization: `Bearer ${issued.body.secret}` },
      });
      await res.text();
      statuses.push(res.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const quotaEvents = () => receiver.received.filter((w) => w.body.includes('"quota.threshold"'));
    await receiver.next((w) => w.body.includes('"threshold":100'));
    await receiver.next((w) => w.body.includes('"threshold":80'));
    // Every delivery the outbox holds has been made: nothing more is coming.
    const deliveries = await kw.admin("GET", "/webhooks/deliveries");
    expect(deliveries.body.items.filter((d: { type: string }) => d.type === "quota.threshold")).toHaveLength(2);
    const bodies = quotaEvents().map((w) => JSON.parse(w.body).data);
    expect(bodies.sort((a, b) => a.threshold - b.threshold)).toEqual([
      expect.objectContaining({ key_id: issued.body.key.id, threshold: 80, used: 4, limit: 5, period: "day" }),
      expect.objectContaining({ key_id: issued.body.key.id, threshold: 100, used: 5, limit: 5, period: "day" }),
    ]);
  });
});
