import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";
import { generateSecret } from "../crypto/secret-format.js";

/**
 * A canary key cannot be told from an unknown key on any surface (status, body, header names),
 * and its use there is a critical alert naming the surface — with the default rules (no
 * `anomalies` section: the canary rule is on).
 */

const dir = mkdtempSync(join(tmpdir(), "keyward-canary-"));
const configFile = join(dir, "keyward.yaml");
writeFileSync(configFile, "trusted_proxies: [127.0.0.1/32]\n");
let up: Awaited<ReturnType<typeof startUpstream>>;
let kw: TestServer;
let canary: { id: string; secret: string };

beforeAll(async () => {
  up = await startUpstream();
  kw = await startTestServer({}, { configFile });
  expect((await kw.admin("POST", "/agents", { name: "echo", upstream: `${up.url}/base` })).status).toBe(201);
  const issued = await kw.admin("POST", "/keys", { owner: "agent:echo", scopes: ["agent:echo"], canary: true });
  expect(issued.status).toBe(201);
  canary = { id: issued.body.key.id, secret: issued.body.secret };
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Send = (secret: string, from: string) => Promise<Response>;
const surfaces: Array<[string, string, Send]> = [
  [
    "gateway",
    "198.51.101.1",
    (s, from) =>
      fetch(`${kw.url}/agents/echo/x`, { headers: { authorization: `Bearer ${s}`, "x-forwarded-for": from } }),
  ],
  [
    "gateway",
    "198.51.102.1",
    (s, from) =>
      fetch(`${kw.url}/v1/verify`, {
        headers: { "x-api-key": s, "x-forwarded-uri": "/agents/echo/x", "x-forwarded-for": from },
      }),
  ],
  [
    "credentials",
    "198.51.103.1",
    (s, from) =>
      fetch(`${kw.url}/v1/credentials`, { headers: { authorization: `Bearer ${s}`, "x-forwarded-for": from } }),
  ],
  [
    "token",
    "198.51.104.1",
    (s, from) =>
      fetch(`${kw.url}/v1/auth/token`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": from },
        body: JSON.stringify({ api_key: s }),
      }),
  ],
];

/** What a caller can observe of an answer, less what differs per request. */
async function observed(res: Response) {
  const text = await res.text();
  const body = text.startsWith("{") ? (JSON.parse(text) as Record<string, unknown>) : text;
  const error = (body as { error?: unknown }).error;
  if (error && typeof error === "object") (error as Record<string, unknown>).request_id = "";
  const headers = [...res.headers.keys()].filter((h) => h !== "date" && h !== "x-request-id").sort();
  return { status: res.status, body, headers, wwwAuthenticate: res.headers.get("www-authenticate") };
}

describe("canary keys on every surface", () => {
  it.each(surfaces)(
    "%s (from %s): answered exactly as an unknown key, and alerted critical",
    async (surface, from, send) => {
      const asCanary = await observed(await send(canary.secret, from));
      const asUnknown = await observed(await send(generateSecret("kwk"), from));
      expect(asCanary).toEqual(asUnknown);
      expect([400, 401]).toContain(asCanary.status);
      expect(JSON.stringify(asCanary)).not.toContain(canary.id);

      await expect
        .poll(async () => {
          const res = await kw.admin("GET", `/alerts?key_id=${canary.id}&severity=critical`);
          return res.body.items.filter((a: { evidence: { address?: string } }) => a.evidence.address === from);
        })
        .toEqual([
          expect.objectContaining({
            rule: "canary",
            severity: "critical",
            status: "open",
            key_id: canary.id,
            evidence: expect.objectContaining({ surface, address: from }),
          }),
        ]);
    },
  );

  it("the canary's secret never reaches an alert or the audit log", async () => {
    const alerts = await kw.admin("GET", `/alerts?key_id=${canary.id}`);
    expect(alerts.body.items.length).toBeGreaterThanOrEqual(surfaces.length);
    const audit = await kw.admin("GET", "/audit?limit=1000");
    for (const text of [JSON.stringify(alerts.body), JSON.stringify(audit.body)]) {
      expect(text).not.toContain(canary.secret);
      expect(text).not.toContain(canary.secret.slice(12));
    }
  });
});
