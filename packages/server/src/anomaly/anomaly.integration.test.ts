import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";
import { type ReceivedWebhook, startWebhookReceiver } from "../../test-support/webhook-receiver.js";
import { frozenClock } from "../clock.js";
import { generateSecret } from "../crypto/secret-format.js";

/**
 * Each detector driven by real requests through the gateway of a Keyward on SQLite, read back as
 * an operator does: the alerts API, the key's state, the audit log. Windows move with an injected
 * clock; the tests wait for the API to show what the detectors did (they act every 250 ms).
 */

const dir = mkdtempSync(join(tmpdir(), "keyward-anomaly-"));
const configFile = join(dir, "keyward.yaml");
writeFileSync(
  configFile,
  `trusted_proxies: [127.0.0.1/32, "::1/128"]
anomalies:
  rules:
    - { name: probe-freeze, detector: denial_spike, threshold: 50, window_s: 60, action: freeze }
    - { name: new-net, detector: new_network, learning_s: 600 }
    - { name: volume, detector: volume_spike, threshold: 30, window_s: 60 }
    - { name: probe, detector: scope_probe, threshold: 3, window_s: 300 }
    - { name: canary, detector: canary }
    - { name: misuse, detector: credential_misuse }
`,
);

const clock = frozenClock(Date.now());
let up: Awaited<ReturnType<typeof startUpstream>>;
let kw: TestServer;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString("base64")}`;

beforeAll(async () => {
  up = await startUpstream();
  receiver = await startWebhookReceiver();
  kw = await startTestServer(
    { KEYWARD_ALERT_WEBHOOK: `${receiver.url}/hook`, KEYWARD_ALERT_WEBHOOK_SECRET: WEBHOOK_SECRET },
    { configFile, clock },
  );
  expect((await kw.admin("POST", "/agents", { name: "echo", upstream: `${up.url}/base` })).status).toBe(201);
  expect((await kw.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
  await receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function newKey(extra: Record<string, unknown> = {}): Promise<{ id: string; secret: string }> {
  const issued = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"], ...extra });
  expect(issued.status).toBe(201);
  return { id: issued.body.key.id, secret: issued.body.secret };
}

function call(agent: string, secret: string, from?: string): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${secret}` };
  if (from) headers["x-forwarded-for"] = from;
  return fetch(`${kw.url}/agents/${agent}/echo`, { headers });
}

// biome-ignore lint/suspicious/noExplicitAny: each test asserts the alert fields it needs
async function alertsOf(keyId: string): Promise<any[]> {
  const res = await kw.admin("GET", `/alerts?key_id=${keyId}`);
  expect(res.status).toBe(200);
  return res.body.items;
}

const poll = { timeout: 5000, interval: 50 };

/** The event's body, once its Standard Webhooks signature checks out with the configured secret. */
function verified(r: ReceivedWebhook): { type: string; data: Record<string, unknown> } {
  const id = r.headers["webhook-id"] as string;
  const ts = r.headers["webhook-timestamp"] as string;
  const mac = createHmac("sha256", Buffer.from(WEBHOOK_SECRET.slice(6), "base64"))
    .update(`${id}.${ts}.${r.body}`)
    .digest("base64");
  expect(String(r.headers["webhook-signature"]).split(" ")).toContain(`v1,${mac}`);
  return JSON.parse(r.body);
}

const about = (type: string, keyId: string) => (r: ReceivedWebhook) => {
  const e = JSON.parse(r.body) as { type: string; data: { key_id?: string } };
  return e.type === type && e.data.key_id === keyId;
};

describe("anomaly detectors through the gateway, on SQLite", () => {
  it("300 denials by one key: exactly one alert, and the key frozen by the rule (audited as the rule)", async () => {
    const key = await newKey();
    for (let i = 0; i < 300; i++) expect([401, 403]).toContain((await call("billing", key.secret)).status);
    await expect.poll(async () => (await kw.admin("GET", `/keys/${key.id}`)).body.status, poll).toBe("frozen");
    expect((await call("echo", key.secret)).status).toBe(401);
    const alerts = await alertsOf(key.id);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      rule: "probe-freeze",
      severity: "warning",
      status: "open",
      key_id: key.id,
      evidence: { threshold: 50, window_s: 60 },
    });
    expect(alerts[0].evidence.denials).toBeGreaterThanOrEqual(50);
    const audit = await kw.admin("GET", `/audit?action=key.freeze&principal=${key.id}`);
    expect(audit.body.events).toHaveLength(1);
    expect(audit.body.events[0]).toMatchObject({
      actor: "anomaly:probe-freeze",
      target: key.id,
      details: { rule: "probe-freeze", alert: alerts[0].id },
    });

    // One signed alert.created and one key.frozen reach the configured endpoint.
    const created = verified(await receiver.next(about("alert.created", key.id)));
    expect(created.data).toMatchObject({ id: alerts[0].id, rule: "probe-freeze", severity: "warning", key_id: key.id });
    const frozen = verified(await receiver.next(about("key.frozen", key.id)));
    expect(frozen.data).toMatchObject({ key_id: key.id, actor: "anomaly:probe-freeze" });
    expect(receiver.received.filter(about("alert.created", key.id))).toHaveLength(1);
  });

  it("a refresh token presented twice raises a credential_misuse alert for its key", async () => {
    const key = await newKey();
    const issued = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: key.secret }),
    });
    expect(issued.status).toBe(200);
    const { refresh_token } = (await issued.json()) as { refresh_token: string };
    const refresh = () =>
      fetch(`${kw.url}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token }).toString(),
      });
    expect((await refresh()).status).toBe(200);
    expect((await refresh()).status).toBe(400);
    await expect.poll(() => alertsOf(key.id), poll).toHaveLength(1);
    const [alert] = await alertsOf(key.id);
    expect(alert).toMatchObject({
      rule: "misuse",
      severity: "critical",
      evidence: { kind: "refresh_token_reuse", address: "127.0.0.1" },
    });
    expect(JSON.stringify(alert)).not.toContain(refresh_token);
  });

  it("a new network after the learning period: one alert naming it; networks learned before stay quiet", async () => {
    const key = await newKey();
    expect((await call("echo", key.secret, "203.0.113.5")).status).toBe(200);
    expect((await call("echo", key.secret, "192.0.2.77")).status).toBe(200); // still learning
    clock.advance(601_000);
    expect((await call("echo", key.secret, "203.0.113.9")).status).toBe(200); // same /24
    expect((await call("echo", key.secret, "198.51.100.7")).status).toBe(200);
    await expect.poll(() => alertsOf(key.id), poll).toHaveLength(1);
    const [alert] = await alertsOf(key.id);
    expect(alert).toMatchObject({
      rule: "new-net",
      evidence: { network: "198.51.100.0/24", address: "198.51.100.7", known_networks: 2, learning_s: 600 },
    });
  });

  it("a volume spike over the key's own baseline: one alert with the count and the baseline", async () => {
    const key = await newKey();
    for (let minute = 0; minute < 4; minute++) {
      for (let i = 0; i < 5; i++) expect((await call("echo", key.secret)).status).toBe(200);
      clock.advance(60_000);
    }
    for (let i = 0; i < 40; i++) expect((await call("echo", key.secret)).status).toBe(200);
    await expect.poll(() => alertsOf(key.id), poll).toHaveLength(1);
    const [alert] = await alertsOf(key.id);
    expect(alert).toMatchObject({ rule: "volume", severity: "warning", evidence: { floor: 30, window_s: 60 } });
    expect(alert.evidence.count).toBeGreaterThanOrEqual(30);
    expect(alert.evidence.mean).toBeLessThan(10);
  });

  it("scope probing: one key refused on three agents raises one alert listing them", async () => {
    const key = await newKey();
    for (const agent of ["billing", "payroll", "hr", "billing"])
      expect((await call(agent, key.secret)).status).toBe(403);
    await expect.poll(() => alertsOf(key.id), poll).toHaveLength(1);
    const [alert] = await alertsOf(key.id);
    expect(alert).toMatchObject({ rule: "probe", key_id: key.id, evidence: { agents: 3, threshold: 3 } });
    expect([...alert.evidence.sample].sort()).toEqual(["billing", "hr", "payroll"]);
  });

  it("a canary key: answered exactly as an unknown key, listed as canary, and its use is a critical alert", async () => {
    const key = await newKey({ canary: true });
    const listed = await kw.admin("GET", `/keys/${key.id}`);
    expect(listed.body).toMatchObject({ id: key.id, canary: true, status: "active" });
    const unknown = generateSecret("kwk");
    const a = await call("echo", key.secret, "198.51.100.20");
    const b = await call("echo", unknown, "198.51.100.20");
    expect(a.status).toBe(401);
    expect(b.status).toBe(401);
    type ErrorBody = { error: { code: string; message: string; request_id: string } };
    const [bodyA, bodyB] = [(await a.json()) as ErrorBody, (await b.json()) as ErrorBody];
    expect({ ...bodyA.error, request_id: "" }).toEqual({ ...bodyB.error, request_id: "" });
    expect(bodyA.error.code).toBe("invalid_key");
    const headers = (r: Response) => [...r.headers.keys()].filter((h) => h !== "date" && h !== "x-request-id").sort();
    expect(headers(a)).toEqual(headers(b));
    await expect.poll(() => alertsOf(key.id), poll).toHaveLength(1);
    const [alert] = await alertsOf(key.id);
    expect(alert).toMatchObject({
      rule: "canary",
      severity: "critical",
      evidence: { surface: "gateway", address: "198.51.100.20", network: "198.51.100.0/24", agent: "echo" },
    });
    expect(JSON.stringify(alert)).not.toContain(key.secret);
  });
});

describe("alerts API", () => {
  it("lists newest first with filters and paging, acks once (audited), 404 for an unknown id, 400 for a bad filter", async () => {
    const all = await kw.admin("GET", "/alerts?limit=100");
    expect(all.status).toBe(200);
    expect(all.body.items.length).toBeGreaterThanOrEqual(5);
    const times = all.body.items.map((a: { created_at: string }) => Date.parse(a.created_at));
    expect(times).toEqual([...times].sort((x, y) => y - x));

    const first = await kw.admin("GET", "/alerts?limit=2");
    expect(first.body.items).toHaveLength(2);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const second = await kw.admin("GET", `/alerts?limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body.items[0].id).toBe(all.body.items[2].id);

    const critical = await kw.admin("GET", "/alerts?severity=critical");
    expect(critical.body.items.map((a: { rule: string }) => a.rule)).toEqual(["canary", "misuse"]);

    const id = all.body.items[0].id;
    const acked = await kw.admin("POST", `/alerts/${id}/ack`);
    expect(acked.status).toBe(200);
    expect(acked.body).toMatchObject({ id, status: "acked" });
    expect((await kw.admin("POST", `/alerts/${id}/ack`)).body.status).toBe("acked");
    const audit = await kw.admin("GET", `/audit?action=alert.ack&principal=${id}`);
    expect(audit.body.events).toHaveLength(1);
    const open = await kw.admin("GET", "/alerts?status=open&limit=100");
    expect(open.body.items.map((a: { id: string }) => a.id)).not.toContain(id);
    const ackedList = await kw.admin("GET", "/alerts?status=acked");
    expect(ackedList.body.items.map((a: { id: string }) => a.id)).toEqual([id]);

    const missing = await kw.admin("POST", "/alerts/alert_nope/ack");
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("not_found");
    const bad = await kw.admin("GET", "/alerts?severity=loud");
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("severity");
    const badCursor = await kw.admin("GET", "/alerts?cursor=bm9wZQ");
    expect(badCursor.status).toBe(400);

    const metrics = await (await fetch(`${kw.url}/metrics`)).text();
    expect(metrics).toContain('keyward_alerts_total{rule="probe-freeze",severity="warning"} 1');
    expect(metrics).toContain('keyward_alerts_total{rule="canary",severity="critical"} 1');
    expect(metrics).toContain('keyward_auto_freezes_total{rule="probe-freeze"} 1');
  });
});

describe("dry_run: a freeze rule that only reports", () => {
  let dry: TestServer;
  beforeAll(async () => {
    const file = join(dir, "dry.yaml");
    writeFileSync(
      file,
      "anomalies:\n  rules:\n    - { name: trial, detector: denial_spike, threshold: 20, action: freeze, dry_run: true }\n",
    );
    dry = await startTestServer({}, { configFile: file });
    expect((await dry.admin("POST", "/agents", { name: "echo", upstream: `${up.url}/base` })).status).toBe(201);
    expect((await dry.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
  });
  afterAll(() => dry?.close());

  it("records the alert with would_freeze and leaves the key working", async () => {
    const issued = await dry.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"] });
    const { secret } = issued.body as { secret: string };
    const id = issued.body.key.id as string;
    const send = (agent: string) =>
      fetch(`${dry.url}/agents/${agent}/echo`, { headers: { authorization: `Bearer ${secret}` } });
    for (let i = 0; i < 40; i++) expect((await send("billing")).status).toBe(403);
    await expect.poll(async () => (await dry.admin("GET", `/alerts?key_id=${id}`)).body.items, poll).toHaveLength(1);
    const [alert] = (await dry.admin("GET", `/alerts?key_id=${id}`)).body.items;
    expect(alert).toMatchObject({ rule: "trial", evidence: { would_freeze: true } });
    expect((await dry.admin("GET", `/keys/${id}`)).body.status).toBe("active");
    expect((await send("echo")).status).toBe(200);
    expect((await dry.admin("GET", `/audit?action=key.freeze&principal=${id}`)).body.events).toEqual([]);
  });
});
