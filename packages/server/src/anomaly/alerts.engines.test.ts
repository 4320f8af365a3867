import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testEngines } from "../../test-support/databases.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { frozenClock } from "../clock.js";
import { createMetrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { migrate } from "../store/migrations.js";
import type { WebhookEventType } from "../webhooks/webhook-events.js";
import { createAlertsService } from "./alerts-service.js";
import { createAlertsStore } from "./alerts-store.js";
import { createSharedWindows } from "./shared-windows.js";

for (const engine of testEngines) {
  describe.skipIf(engine.skip !== undefined)(`alerts on ${engine.name}`, () => {
    let db: Db;
    const clock = frozenClock();
    const audit = recordingAudit();
    const metrics = createMetrics();
    const emitted: Array<{ type: WebhookEventType; data: Record<string, unknown> }> = [];
    /** One alerts service per "replica", all on the same database. */
    const replica = () =>
      createAlertsService({
        db,
        store: createAlertsStore(db),
        clock,
        audit,
        metrics,
        webhooks: {
          // Called inside the alert's transaction: only the replica that won the incident gets here.
          async emitIn(tx, type, data) {
            await tx.query("SELECT 1");
            emitted.push({ type, data });
          },
        },
      });

    beforeEach(async () => {
      db = await engine.open();
    });
    afterEach(() => db.close());

    it("one incident raised at once by three replicas, ten times each, is one alert; after the cooldown, a new one", async () => {
      const replicas = [replica(), replica(), replica()];
      const input = {
        rule: "spike",
        severity: "warning" as const,
        keyId: "key_a",
        evidence: { denials: 51 },
        cooldownS: 60,
      };
      const raised = await Promise.all(replicas.flatMap((r) => Array.from({ length: 10 }, () => r.raise(input))));
      const alerts = raised.filter((a) => a !== undefined);
      expect(alerts).toHaveLength(1);
      expect(alerts[0]).toMatchObject({
        rule: "spike",
        severity: "warning",
        status: "open",
        keyId: "key_a",
        evidence: { denials: 51 },
      });
      expect(emitted.filter((e) => e.type === "alert.created").map((e) => e.data.id)).toEqual([alerts[0]?.id]);
      expect(emitted.at(-1)?.data).toMatchObject({
        rule: "spike",
        key_id: "key_a",
        severity: "warning",
        status: "open",
      });

      // Another key, another rule: other incidents.
      expect(await replicas[0]?.raise({ ...input, keyId: "key_b" })).toBeDefined();
      expect(await replicas[1]?.raise({ ...input, rule: "other" })).toBeDefined();
      clock.advance(59_999);
      expect(await replicas[2]?.raise(input)).toBeUndefined();
      clock.advance(1);
      expect(await replicas[2]?.raise(input)).toBeDefined();
      const ofKey = (await replicas[0]?.list({ keyId: "key_a" }, undefined, 10)) ?? [];
      expect(ofKey.map((a) => a.rule).sort()).toEqual(["other", "spike", "spike"]);
    });

    it("lists newest first with filters and a cursor; ack is audited once; an unknown id is not_found", async () => {
      const r = replica();
      for (const [i, severity] of (["info", "critical", "warning"] as const).entries()) {
        clock.advance(1000);
        await r.raise({ rule: `r${i}`, severity, keyId: "key_x", evidence: {} });
      }
      const all = await r.list({}, undefined, 10);
      expect(all.map((a) => a.rule)).toEqual(["r2", "r1", "r0"]);
      expect((await r.list({ severity: "critical" }, undefined, 10)).map((a) => a.rule)).toEqual(["r1"]);
      const last = all[0];
      if (!last) throw new Error("no alert");
      const after = await r.list({}, { createdAt: last.createdAt, id: last.id }, 10);
      expect(after.map((a) => a.rule)).toEqual(["r1", "r0"]);

      const before = audit.events.length;
      const actor = { principal: "admin:ops" };
      expect((await r.ack(actor, last.id)).status).toBe("acked");
      expect((await r.ack(actor, last.id)).status).toBe("acked");
      expect(audit.events.slice(before)).toEqual([
        expect.objectContaining({ actor: "admin:ops", action: "alert.ack", target: last.id, outcome: "success" }),
      ]);
      expect((await r.list({ status: "acked" }, undefined, 10)).map((a) => a.id)).toEqual([last.id]);
      await expect(r.ack(actor, "alert_nope")).rejects.toMatchObject({ code: "not_found" });
    });

    it("shared windows add every replica's counts, and a member is added by exactly one", async () => {
      const windows = [createSharedWindows(db), createSharedWindows(db), createSharedWindows(db)];
      const totals = await Promise.all(
        windows.map((w) => w.add([{ rule: "d", subject: "key_a", windowStart: 60_000, n: 17 }])),
      );
      expect(totals.map((t) => t[0]).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([17, 34, 51]);
      const added = await Promise.all(
        windows.map((w) => w.addMember({ rule: "n", subject: "key_a", windowStart: 0, member: "10.0.0.0/24", at: 5 })),
      );
      expect(added.filter((a) => a.added)).toHaveLength(1);
      expect(added.every((a) => a.size === 1 && a.firstSeen === 5)).toBe(true);
    });
  });
}

describe.skipIf(testEngines[0]?.skip !== undefined)("migration 10 on an existing database", () => {
  it("adds the alert tables and the canary column, keeping the keys", async () => {
    const db = await testEngines[0]?.open(8);
    if (!db) throw new Error("no sqlite");
    await db.exec(
      `INSERT INTO api_keys (id, hash, prefix, owner, scopes, status, lineage, created_at, updated_at)
       VALUES ('key_old', 'h1:x', 'kwk_old', 'consumer:acme', '[]', 'active', 'key_old', 1, 1)`,
    );
    await migrate(db);
    expect(await db.query("SELECT id, canary FROM api_keys")).toEqual([{ id: "key_old", canary: 0 }]);
    expect(await db.query("SELECT COUNT(*) AS n FROM alerts")).toEqual([{ n: 0 }]);
    await db.close();
  });
});
