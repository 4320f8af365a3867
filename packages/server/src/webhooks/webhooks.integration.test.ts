import { createHmac, randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startWebhookReceiver, type WebhookReceiver } from "../../test-support/webhook-receiver.js";
import { createLogger } from "../ops/logger.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function verify(secret: string, headers: Record<string, unknown>, body: string): boolean {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const signed = `${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`;
  return headers["webhook-signature"] === `v1,${createHmac("sha256", key).update(signed).digest("base64")}`;
}

function capturedLogs() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, logger: createLogger({ level: "debug", destination }) };
}

async function start(
  env: Record<string, string>,
  opts: Parameters<typeof startTestServer>[1] = {},
): Promise<TestServer> {
  const kw = await startTestServer(env, opts);
  cleanups.push(() => kw.close());
  return kw;
}

async function receiver(): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver();
  cleanups.push(() => r.close());
  return r;
}

/** A port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe("webhooks through a running Keyward", () => {
  it("a credential change reaches KEYWARD_ALERT_WEBHOOK signed, with names and versions only; the API lists it delivered", async () => {
    const r = await receiver();
    const secret = `whsec_${randomBytes(32).toString("base64")}`;
    const logs = capturedLogs();
    const kw = await start(
      { KEYWARD_ALERT_WEBHOOK: `${r.url}/hook?token=url-held-token`, KEYWARD_ALERT_WEBHOOK_SECRET: secret },
      { logger: logs.logger },
    );
    expect((await kw.admin("PUT", "/credentials/openai", { value: "sk-live-value-never-sent" })).status).toBe(201);
    const got = await r.next((w) => w.body.includes("credential.changed"));
    expect(verify(secret, got.headers, got.body)).toBe(true);
    const body = JSON.parse(got.body);
    expect(body).toMatchObject({ type: "credential.changed", data: { name: "openai", action: "create", version: 1 } });
    expect(body.data.actor).toMatch(/^admin:/);
    expect(got.body).not.toContain("sk-live-value-never-sent");

    await vi.waitFor(async () => {
      const list = await kw.admin("GET", "/webhooks/deliveries?status=delivered");
      expect(list.body.items).toHaveLength(1);
    });
    const list = await kw.admin("GET", "/webhooks/deliveries");
    const [item] = list.body.items;
    expect(item).toMatchObject({
      event_id: got.headers["webhook-id"],
      type: "credential.changed",
      endpoint_url: `${r.url}/hook`,
      status: "delivered",
      attempts: 1,
      last_error: null,
      next_attempt_at: null,
    });
    expect(JSON.stringify(list.body)).not.toContain("url-held-token");
    expect(JSON.stringify(list.body)).not.toContain(secret.slice(6));
    expect((await kw.admin("POST", `/webhooks/deliveries/${item.id}/retry`)).status).toBe(409);
    expect((await kw.admin("POST", "/webhooks/deliveries/whd_nope/retry")).status).toBe(404);
    expect((await kw.admin("GET", "/webhooks/deliveries?status=lost")).status).toBe(400);
    const all = logs.lines.join("");
    expect(all).not.toContain(secret.slice(6));
    expect(all).not.toContain("url-held-token");
  });

  it("key.revoked, key.frozen and key.rotated come from the admin actions, with ids and prefixes only", async () => {
    const r = await receiver();
    const secret = `whsec_${randomBytes(32).toString("base64")}`;
    const kw = await start({ KEYWARD_ALERT_WEBHOOK: `${r.url}/keys`, KEYWARD_ALERT_WEBHOOK_SECRET: secret });
    await kw.admin("POST", "/consumers", { name: "acme" });
    const issue = async () => (await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: [] })).body;
    const [a, b, c] = [await issue(), await issue(), await issue()];
    await kw.admin("POST", `/keys/${a.key.id}/revoke`);
    await kw.admin("POST", `/keys/${a.key.id}/revoke`);
    await kw.admin("POST", `/keys/${b.key.id}/freeze`);
    const rotated = await kw.admin("POST", `/keys/${c.key.id}/rotate`, { grace_s: 60 });
    const of = (type: string) => r.next((w) => JSON.parse(w.body).type === type);
    const [revoked, frozen, rot] = await Promise.all([of("key.revoked"), of("key.frozen"), of("key.rotated")]);
    for (const w of [revoked, frozen, rot]) expect(verify(secret, w.headers, w.body)).toBe(true);
    expect(JSON.parse(revoked.body).data).toMatchObject({
      key_id: a.key.id,
      owner: "consumer:acme",
      prefix: a.key.prefix,
    });
    expect(JSON.parse(frozen.body).data).toMatchObject({ key_id: b.key.id });
    expect(JSON.parse(rot.body).data).toMatchObject({ key_id: c.key.id, new_key_id: rotated.body.key.id, grace_s: 60 });
    const all = r.received.map((w) => w.body).join("\n");
    for (const k of [a, b, c, rotated.body]) expect(all).not.toContain(k.secret);
    // A second revoke changes nothing and announces nothing.
    await vi.waitFor(async () => {
      const list = await kw.admin("GET", "/webhooks/deliveries?status=delivered");
      expect(list.body.items.map((d: { type: string }) => d.type).sort()).toEqual([
        "key.frozen",
        "key.revoked",
        "key.rotated",
      ]);
    });
  });

  it("a delivery that keeps failing is shown failed with its reason, and a retry sends it again with the same webhook-id", async () => {
    const port = await deadPort();
    const secret = `whsec_${randomBytes(24).toString("base64")}`;
    const kw = await start(
      { KEYWARD_ALERT_WEBHOOK: `http://127.0.0.1:${port}/down`, KEYWARD_ALERT_WEBHOOK_SECRET: secret },
      { webhooks: { maxAttempts: 1 } },
    );
    await kw.admin("PUT", "/credentials/db", { value: "pw-1" });
    const failed = await vi.waitFor(async () => {
      const list = await kw.admin("GET", "/webhooks/deliveries?status=failed");
      expect(list.body.items).toHaveLength(1);
      return list.body.items[0];
    });
    expect(failed).toMatchObject({ status: "failed", attempts: 1, last_error: "connection failed (ECONNREFUSED)" });
    const again = await kw.admin("POST", `/webhooks/deliveries/${failed.id}/retry`);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: failed.id, event_id: failed.event_id, attempts: 0 });
    expect(["pending", "failed"]).toContain(again.body.status);
    const audit = await kw.admin("GET", "/audit?action=webhook.retry");
    expect(audit.body.events[0]).toMatchObject({ action: "webhook.retry", target: failed.id });
  });
});
