import { createHmac, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { openTestSqlite } from "../../test-support/databases.js";
import { recordingAudit } from "../../test-support/recording-audit.js";
import { type Answer, startWebhookReceiver, type WebhookReceiver } from "../../test-support/webhook-receiver.js";
import { frozenClock } from "../clock.js";
import type { Db } from "../store/db.js";
import {
  createDeliveryWorker,
  DEFAULT_DELIVERY,
  type DeliveryOutcome,
  type DeliverySettings,
  type DeliveryWorker,
} from "./delivery-worker.js";
import { createOutboxStore, type OutboxRow } from "./outbox-store.js";
import { endpointId, signWebhook } from "./webhook-signing.js";
import { createWebhooksService } from "./webhooks-service.js";

const secret = () => `whsec_${randomBytes(32).toString("base64")}`;
const quiet = { warn: () => {} };
const admin = { principal: "admin:test" };

/** The signature as the Standard Webhooks spec defines it, computed here independently of the code under test. */
function expectedSignature(whsec: string, id: string, timestamp: string, body: string): string {
  const key = Buffer.from(whsec.replace(/^whsec_/, ""), "base64");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  endpoints: Array<{ receiver: WebhookReceiver; path: string; events?: string[] }>,
  settings: Partial<DeliverySettings> = {},
  db?: Db,
) {
  const theDb = db ?? (await openTestSqlite());
  if (!db) cleanups.push(() => theDb.close());
  const clock = frozenClock(Date.UTC(2026, 5, 1));
  const store = createOutboxStore(theDb);
  const specs = endpoints.map((e) => ({
    url: `${e.receiver.url}${e.path}`,
    secret: secret(),
    events: e.events ?? ["key.revoked", "alert.created"],
  }));
  const service = createWebhooksService({ db: theDb, store, clock, endpoints: specs, audit: recordingAudit() });
  const worker = makeWorker(theDb, clock, specs, settings);
  return { db: theDb, clock, store, service, worker, specs };
}

function makeWorker(
  db: Db,
  clock: ReturnType<typeof frozenClock>,
  specs: Array<{ url: string; secret: string }>,
  settings: Partial<DeliverySettings> = {},
) {
  const worker = createDeliveryWorker({
    store: createOutboxStore(db),
    endpoints: specs.map((s) => ({ id: endpointId(s.url), url: s.url, secret: s.secret })),
    clock,
    logger: quiet,
    settings: { ...DEFAULT_DELIVERY, timeoutMs: 2000, ...settings },
  });
  cleanups.push(() => worker.close(0));
  return worker;
}

function outcome(
  worker: DeliveryWorker,
  want: DeliveryOutcome,
  match: (r: OutboxRow) => boolean = () => true,
): Promise<OutboxRow> {
  return new Promise((resolve) => {
    const off = worker.onOutcome((o, row) => {
      if (o === want && match(row)) {
        off();
        resolve(row);
      }
    });
  });
}

async function receiver(answer?: (path: string, n: number) => Answer) {
  const r = await startWebhookReceiver(answer);
  cleanups.push(() => r.close());
  return r;
}

describe("Standard Webhooks signatures", () => {
  it("reproduces the specification's published test vector", () => {
    expect(
      signWebhook(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        '{"test": 2432232314}',
      ),
    ).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("signs each delivery: webhook-id, webhook-timestamp, and v1 HMAC-SHA256 of id.timestamp.body", async () => {
    const r = await receiver();
    const { service, worker, specs, clock } = await setup([{ receiver: r, path: "/hook" }]);
    await service.emit("key.revoked", { key_id: "key_1", prefix: "kwk_abcdefgh" });
    const delivered = outcome(worker, "delivered");
    await worker.tick();
    await delivered;
    const got = r.received[0];
    if (!got) throw new Error("nothing received");
    const id = got.headers["webhook-id"] as string;
    const ts = got.headers["webhook-timestamp"] as string;
    expect(id).toMatch(/^msg_[0-9a-z]{9}[0-9a-f]{20}$/);
    expect(ts).toBe(String(Math.floor(clock.now() / 1000)));
    expect(got.headers["webhook-signature"]).toBe(expectedSignature(specs[0]?.secret as string, id, ts, got.body));
    expect(JSON.parse(got.body)).toEqual({
      type: "key.revoked",
      timestamp: new Date(clock.now()).toISOString(),
      data: { key_id: "key_1", prefix: "kwk_abcdefgh" },
    });
  });

  it("sends an event only to endpoints subscribed to its type", async () => {
    const r = await receiver();
    const { service, store } = await setup([
      { receiver: r, path: "/all", events: ["key.revoked"] },
      { receiver: r, path: "/alerts", events: ["alert.created"] },
    ]);
    await service.emit("alert.created", { alert_id: "alt_1" });
    const rows = await store.list(undefined, undefined, 10);
    expect(rows.map((row) => row.endpoint_url)).toEqual([`${r.url}/alerts`]);
  });
});

describe("retries", () => {
  it("retries a 500 with exponential backoff on the injected clock, same webhook-id, then delivers", async () => {
    const r = await receiver((_p, n) => (n <= 2 ? 500 : 204));
    const { service, worker, clock, store } = await setup([{ receiver: r, path: "/h" }], { baseDelayMs: 10_000 });
    await service.emit("key.revoked", { key_id: "key_1" });
    let retried = outcome(worker, "retried");
    await worker.tick();
    const start = clock.now();
    let row = await store.get((await retried).id);
    expect(row).toMatchObject({ status: "pending", attempts: 1, last_error: "answered 500" });
    // First delay: base × 2^0 with jitter in [½, 1].
    expect(row?.next_attempt_at).toBeGreaterThanOrEqual(start + 5000);
    expect(row?.next_attempt_at).toBeLessThanOrEqual(start + 10_000);
    // Not due yet: a pass sends nothing.
    await worker.tick();
    expect(r.received).toHaveLength(1);
    clock.set(row?.next_attempt_at as number);
    retried = outcome(worker, "retried");
    await worker.tick();
    row = await store.get((await retried).id);
    expect(row?.attempts).toBe(2);
    expect(row?.next_attempt_at).toBeGreaterThanOrEqual(clock.now() + 10_000);
    expect(row?.next_attempt_at).toBeLessThanOrEqual(clock.now() + 20_000);
    clock.set(row?.next_attempt_at as number);
    const delivered = outcome(worker, "delivered");
    await worker.tick();
    await delivered;
    expect(await store.get(row?.id as string)).toMatchObject({ status: "delivered", attempts: 3, last_error: null });
    expect(new Set(r.received.map((x) => x.headers["webhook-id"])).size).toBe(1);
  });

  it("counts a hanging endpoint as a failed attempt after the timeout and retries it", async () => {
    const r = await receiver((_p, n) => (n === 1 ? "hang" : 200));
    const { service, worker, clock, store } = await setup([{ receiver: r, path: "/slow" }], { timeoutMs: 150 });
    await service.emit("key.revoked", { key_id: "key_1" });
    const retried = outcome(worker, "retried");
    await worker.tick();
    const row = await store.get((await retried).id);
    expect(row).toMatchObject({ status: "pending", attempts: 1, last_error: "no answer within 150 ms" });
    clock.set(row?.next_attempt_at as number);
    const delivered = outcome(worker, "delivered");
    await worker.tick();
    await delivered;
  });

  it("does not follow a redirect: a 3xx is a failed attempt and the other place gets nothing", async () => {
    const elsewhere = await receiver();
    const r = await receiver(() => ({ redirect: `${elsewhere.url}/stolen` }));
    const { service, worker, store } = await setup([{ receiver: r, path: "/moved" }]);
    await service.emit("key.revoked", { key_id: "key_1" });
    const retried = outcome(worker, "retried");
    await worker.tick();
    expect((await store.get((await retried).id))?.last_error).toBe("answered 302 (redirects are not followed)");
    expect(elsewhere.received).toHaveLength(0);
  });

  it("marks a delivery failed after the last attempt; the retry puts it back and it is delivered", async () => {
    let down = true;
    const r = await receiver(() => (down ? 503 : 200));
    const { service, worker, clock, store } = await setup([{ receiver: r, path: "/h" }], { maxAttempts: 2 });
    await service.emit("key.revoked", { key_id: "key_1" });
    const retried = outcome(worker, "retried");
    await worker.tick();
    clock.set((await store.get((await retried).id))?.next_attempt_at as number);
    const failed = outcome(worker, "failed");
    await worker.tick();
    const row = await store.get((await failed).id);
    expect(row).toMatchObject({ status: "failed", attempts: 2, last_error: "answered 503" });
    down = false;
    await service.retry(admin, row?.id as string);
    const delivered = outcome(worker, "delivered");
    await worker.tick();
    await delivered;
    expect((await store.get(row?.id as string))?.status).toBe("delivered");
    await expect(service.retry(admin, row?.id as string)).rejects.toMatchObject({ code: "conflict" });
    await expect(service.retry(admin, "whd_nope")).rejects.toMatchObject({ code: "not_found" });
  });
});

describe("isolation and leases", () => {
  it("a hanging endpoint does not delay another endpoint's deliveries", async () => {
    const slow = await receiver(() => "hang");
    const fast = await receiver();
    const { service, worker } = await setup(
      [
        { receiver: slow, path: "/slow" },
        { receiver: fast, path: "/fast" },
      ],
      { timeoutMs: 60_000, concurrency: 2 },
    );
    for (let i = 0; i < 5; i++) await service.emit("key.revoked", { key_id: `key_${i}` });
    const fastDone = new Promise<void>((resolve) => {
      let n = 0;
      worker.onOutcome((o, row) => {
        if (o === "delivered" && row.endpoint_url.endsWith("/fast") && ++n === 5) resolve();
      });
    });
    await worker.tick();
    await fastDone;
    // The slow endpoint holds its two slots, no more, and nothing of it was settled.
    expect(slow.received).toHaveLength(2);
    expect(fast.received).toHaveLength(5);
  });

  it("a replica that stopped mid-delivery: after its lease expires another sends the same webhook-id, once settled", async () => {
    const r = await receiver((_p, n) => (n === 1 ? "hang" : 200));
    const { service, worker, clock, store, db, specs } = await setup([{ receiver: r, path: "/h" }], {
      timeoutMs: 60_000,
    });
    await service.emit("key.revoked", { key_id: "key_1" });
    await worker.tick();
    const first = await r.next();
    // Another replica finds the row leased and leaves it.
    const other = makeWorker(db, clock, specs);
    await other.tick();
    expect(r.received).toHaveLength(1);
    // The first replica is gone (its request never settles); its lease runs out.
    clock.advance(60_000 + 30_001);
    const delivered = outcome(other, "delivered");
    await other.tick();
    const row = await delivered;
    expect(r.received[1]?.headers["webhook-id"]).toBe(first.headers["webhook-id"]);
    // The old request's late failure does not undo the delivery (its lease is gone).
    r.dropHanging();
    await outcome(worker, "retried");
    expect(await store.get(row.id)).toMatchObject({ status: "delivered", attempts: 2 });
  });

  it("shutdown releases an in-flight lease without counting the attempt; a restart delivers it", async () => {
    const r = await receiver((_p, n) => (n === 1 ? "hang" : 200));
    const { service, worker, clock, store, db, specs } = await setup([{ receiver: r, path: "/h" }], {
      timeoutMs: 60_000,
    });
    await service.emit("key.revoked", { key_id: "key_1" });
    await worker.tick();
    await r.next();
    const released = outcome(worker, "released");
    await worker.close(0);
    const row = await released;
    expect(await store.get(row.id)).toMatchObject({ status: "pending", attempts: 0, lease_owner: null });
    const restarted = makeWorker(db, clock, specs);
    const delivered = outcome(restarted, "delivered");
    await restarted.tick();
    await delivered;
    expect(new Set(r.received.map((x) => x.headers["webhook-id"])).size).toBe(1);
  });
});
