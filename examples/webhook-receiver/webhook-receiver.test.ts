import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type AgentProcess, startAgentProcess } from "../../packages/server/test-support/agent-process.js";
import type { TestServer } from "../../packages/server/test-support/server.js";
import { startTestServerAt } from "../../packages/server/test-support/server-at.js";

/**
 * The receiver as a user runs it (`node examples/webhook-receiver/receiver.mjs`), fed real
 * deliveries by a real Keyward: it verifies them, refuses forgeries, and acts once per webhook-id,
 * also when Keyward is restarted in the middle of a delivery.
 */

const SCRIPT = join(import.meta.dirname, "receiver.mjs");
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function receiver(secret: string): Promise<AgentProcess> {
  const p = await startAgentProcess(SCRIPT, { WEBHOOK_SECRET: secret, PORT: "0" });
  cleanups.push(() => p.stop());
  return p;
}

async function keyward(dataDir: string, url: string, secret: string): Promise<TestServer> {
  const kw = await startTestServerAt(
    dataDir,
    { KEYWARD_ALERT_WEBHOOK: url, KEYWARD_ALERT_WEBHOOK_SECRET: secret },
    { webhooks: { shutdownGraceMs: 0, pollMs: 50 } },
  );
  cleanups.push(() => kw.close());
  return kw;
}

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "kw-receiver-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function revokeNewKey(kw: TestServer): Promise<string> {
  await kw.admin("POST", "/consumers", { name: "acme" });
  const made = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: [] });
  await kw.admin("POST", `/keys/${made.body.key.id}/revoke`);
  return made.body.key.id;
}

describe("examples/webhook-receiver", () => {
  it("verifies Keyward's deliveries and refuses a forged or unsigned one", async () => {
    const secret = `whsec_${randomBytes(32).toString("base64")}`;
    const r = await receiver(secret);
    const kw = await keyward(dataDir(), `${r.url}/keyward`, secret);
    await revokeNewKey(kw);
    const [, id] = await r.waitFor(/event (msg_\S+) key\.revoked/);
    const forged = await fetch(`${r.url}/keyward`, {
      method: "POST",
      headers: {
        "webhook-id": "msg_forged",
        "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
        "webhook-signature": `v1,${randomBytes(32).toString("base64")}`,
      },
      body: JSON.stringify({ type: "key.revoked", data: {} }),
    });
    expect(forged.status).toBe(401);
    expect((await fetch(`${r.url}/keyward`, { method: "POST", body: "{}" })).status).toBe(401);
    expect(r.stdout()).not.toContain("msg_forged");
    expect(r.stdout().match(/^event /gm)).toHaveLength(1);
    expect(id).toMatch(/^msg_/);
  });

  it("a Keyward restarted mid-delivery sends the event again with the same webhook-id; the receiver acts once", async () => {
    const secret = `whsec_${randomBytes(32).toString("base64")}`;
    const r = await receiver(secret);
    // Between Keyward and the receiver: the first delivery reaches the receiver, but its answer
    // is held back, so Keyward is still waiting for it when it stops.
    let first = true;
    let forwarded!: () => void;
    const reached = new Promise<void>((resolve) => {
      forwarded = resolve;
    });
    const held = new Set<http.ServerResponse>();
    const relay = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        const answer = await fetch(`${r.url}${req.url}`, {
          method: "POST",
          headers: Object.fromEntries(
            ["content-type", "webhook-id", "webhook-timestamp", "webhook-signature"].map((h) => [
              h,
              String(req.headers[h]),
            ]),
          ),
          body: Buffer.concat(chunks),
        });
        if (first) {
          first = false;
          held.add(res);
          forwarded();
          return;
        }
        res.writeHead(answer.status).end();
      });
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const res of held) res.socket?.destroy();
          relay.closeAllConnections();
          relay.close(() => resolve());
        }),
    );
    const url = `http://127.0.0.1:${(relay.address() as AddressInfo).port}/keyward`;
    const dir = dataDir();
    const before = await keyward(dir, url, secret);
    await revokeNewKey(before);
    await reached;
    const [, id] = await r.waitFor(/event (msg_\S+) key\.revoked/);
    await before.close();

    const after = await keyward(dir, url, secret);
    await r.waitFor(new RegExp(`duplicate ${id}`));
    const list = await after.admin("GET", "/webhooks/deliveries?status=delivered");
    expect(list.body.items).toHaveLength(1);
    expect(list.body.items[0]).toMatchObject({ event_id: id, type: "key.revoked", attempts: 1 });
    expect(r.stdout().match(/^event /gm)).toHaveLength(1);
  });
});
