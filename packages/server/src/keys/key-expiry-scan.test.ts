import { afterEach, describe, expect, it } from "vitest";
import { openTestSqlite } from "../../test-support/databases.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { frozenClock } from "../clock.js";
import type { Db } from "../store/db.js";
import { createOutboxStore } from "../webhooks/outbox-store.js";
import { createWebhooksService } from "../webhooks/webhooks-service.js";
import { createKeyExpiryScan } from "./key-expiry-scan.js";

const DAY = 86_400_000;
const quiet = { warn: () => {} };
let db: Db;
afterEach(() => db?.close());

async function insertKey(id: string, expiresAt: number | null, extra: { rotated_to?: string; status?: string } = {}) {
  await db.exec(
    `INSERT INTO api_keys (id, hash, prefix, owner, name, scopes, status, expires_at, rotated_to, lineage, created_at, updated_at)
     VALUES ($1, $2, $3, 'consumer:acme', NULL, '[]', $4, $5, $6, $1, 0, 0)`,
    [id, `h1:${id}`, `kwk_${id.slice(-8)}`, extra.status ?? "active", expiresAt, extra.rotated_to ?? null],
  );
}

async function setup() {
  db = await openTestSqlite();
  const clock = frozenClock(Date.UTC(2026, 5, 1));
  const store = createOutboxStore(db);
  const endpoints = [{ url: "http://127.0.0.1:9/hook", secret: `whsec_${"A".repeat(32)}`, events: ["key.expiring"] }];
  const events = createWebhooksService({ db, store, clock, endpoints, audit: recordingAudit() });
  const replica = () => createKeyExpiryScan({ db, clock, events, logger: quiet });
  const sent = async () => (await store.list(undefined, undefined, 100)).map((r) => JSON.parse(r.body).data).reverse();
  return { clock, replica, sent };
}

describe("key.expiring", () => {
  it("announces 7 days and then 1 day before expiry, once each, across replicas", async () => {
    const { clock, replica, sent } = await setup();
    const now = clock.now();
    await insertKey("key_soon0000000001", now + 3 * DAY);
    await insertKey("key_later000000001", now + 30 * DAY);
    const [a, b] = [replica(), replica()];
    expect((await Promise.all([a.runOnce(), b.runOnce()])).reduce((x, y) => x + y)).toBe(1);
    expect(await sent()).toEqual([
      {
        key_id: "key_soon0000000001",
        owner: "consumer:acme",
        prefix: "kwk_00000001",
        name: null,
        expires_at: new Date(now + 3 * DAY).toISOString(),
        days_before: 7,
      },
    ]);
    clock.advance(2.5 * DAY);
    expect(await a.runOnce()).toBe(1);
    expect(await b.runOnce()).toBe(0);
    expect((await sent()).map((d) => d.days_before)).toEqual([7, 1]);
  });

  it("a key first seen inside a day gets only the 1-day event; rotated, revoked and expired keys get none", async () => {
    const { clock, replica, sent } = await setup();
    const now = clock.now();
    await insertKey("key_hours00000001", now + 6 * 3_600_000);
    await insertKey("key_rotated000001", now + 3_600_000, { rotated_to: "key_next" });
    await insertKey("key_revoked000001", now + 3_600_000, { status: "revoked" });
    await insertKey("key_expired000001", now - 1);
    const scan = replica();
    expect(await scan.runOnce()).toBe(1);
    clock.advance(3_600_000);
    expect(await scan.runOnce()).toBe(0);
    expect((await sent()).map((d) => [d.key_id, d.days_before])).toEqual([["key_hours00000001", 1]]);
  });
});
