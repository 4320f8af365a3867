import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { openTestPostgres } from "../../test-support/databases.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { startWebhookReceiver } from "../../test-support/webhook-receiver.js";
import { frozenClock } from "../clock.js";
import type { Db } from "../store/db.js";
import { openPostgres } from "../store/postgres.js";
import { createDeliveryWorker, DEFAULT_DELIVERY, type DeliveryWorker } from "./delivery-worker.js";
import { createOutboxStore } from "./outbox-store.js";
import { endpointId } from "./webhook-signing.js";
import { createWebhooksService } from "./webhooks-service.js";

const url = process.env.KEYWARD_TEST_DATABASE_URL;
if (!url) console.warn("[keyward tests] KEYWARD_TEST_DATABASE_URL is not set: the webhook replicas test is skipped");

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.skipIf(!url)("webhook delivery with two replicas on one PostgreSQL", () => {
  it("delivers every (event, endpoint) exactly once while both replicas claim at the same time", async () => {
    const first = await openTestPostgres();
    cleanups.push(() => first.close());
    const [row] = await first.query<{ schema: string }>("SELECT current_schema() AS schema");
    const second = await openPostgres(url as string, { schema: row?.schema as string, max: 4 });
    cleanups.push(() => second.close());
    const r = await startWebhookReceiver();
    cleanups.push(() => r.close());
    const clock = frozenClock(Date.UTC(2026, 5, 1));
    const secret = `whsec_${randomBytes(32).toString("base64")}`;
    const specs = ["/a", "/b"].map((p) => ({ url: `${r.url}${p}`, secret, events: ["key.revoked"] }));
    const service = createWebhooksService({
      ...{ db: first, store: createOutboxStore(first), clock, endpoints: specs },
      audit: recordingAudit(),
    });
    const replica = (db: Db): DeliveryWorker => {
      const w = createDeliveryWorker({
        store: createOutboxStore(db),
        endpoints: specs.map((s) => ({ id: endpointId(s.url), url: s.url, secret })),
        clock,
        logger: { warn: () => {} },
        settings: { ...DEFAULT_DELIVERY, concurrency: 8 },
      });
      cleanups.push(() => w.close(0));
      return w;
    };
    const workers = [replica(first), replica(second)];
    const events = 40;
    for (let i = 0; i < events; i++) await service.emit("key.revoked", { key_id: `key_${i}` });
    const done = new Promise<void>((resolve) => {
      let n = 0;
      for (const w of workers) w.onOutcome((o) => o === "delivered" && ++n === events * 2 && resolve());
    });
    // Both replicas claim concurrently, pass after pass, until everything is sent.
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    while (!finished) await Promise.race([Promise.all(workers.map((w) => w.tick())), done]);
    const seen = r.received.map((w) => `${w.path} ${w.headers["webhook-id"]}`);
    expect(seen).toHaveLength(events * 2);
    expect(new Set(seen).size).toBe(events * 2);
    const rows = await first.query<{ status: string; attempts: number }>("SELECT status, attempts FROM webhook_outbox");
    expect(rows.every((row) => row.status === "delivered" && Number(row.attempts) === 1)).toBe(true);
  });
});
