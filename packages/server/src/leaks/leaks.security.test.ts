import { createHash, createSign, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";

const reporter = generateKeyPairSync("ec", { namedCurve: "P-256" });
const forger = generateKeyPairSync("ec", { namedCurve: "P-256" });
const KEY_ID = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";

function configFile(action: "revoke" | "freeze"): string {
  const pem = reporter.publicKey.export({ type: "spki", format: "pem" }).toString().trim();
  const dir = mkdtempSync(join(tmpdir(), "kw-leaks-"));
  const file = join(dir, "keyward.yaml");
  const indented = pem.split("\n").join("\n        ");
  writeFileSync(
    file,
    `leaks:\n  action: ${action}\n  public_keys:\n    - id: "${KEY_ID}"\n      pem: |\n        ${indented}\n`,
  );
  return file;
}

function sign(body: string, key: KeyObject = reporter.privateKey): string {
  return createSign("sha256").update(body).sign(key).toString("base64");
}

async function report(kw: TestServer, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${kw.url}/v1/leaks`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "github-public-key-identifier": KEY_ID,
      "github-public-key-signature": sign(body),
      ...headers,
    },
    body,
  });
  return { status: res.status, text: await res.text() };
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const leak = (token: string) => ({
  token,
  type: "keyward_api_key",
  url: "https://github.com/acme/app/blob/abc/.env",
  source: "content",
});

async function issueKey(kw: TestServer): Promise<{ id: string; secret: string }> {
  await kw.admin("POST", "/consumers", { name: "acme" });
  const made = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: [] });
  return { id: made.body.key.id, secret: made.body.secret };
}

describe("POST /v1/leaks (action: revoke)", () => {
  let kw: TestServer;
  beforeAll(async () => {
    kw = await startTestServer({}, { configFile: configFile("revoke") });
  });
  afterAll(() => kw?.close());

  it("a signed report revokes the live key, raises a critical alert, and answers in the partner format without echoing tokens", async () => {
    const key = await issueKey(kw);
    const notOurs = "kwk_0000000000000000000000000000000000AAAA";
    const body = JSON.stringify([leak(key.secret), leak(notOurs), leak("ghp_somethingelse")]);
    const res = await report(kw, body);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual([
      { token_hash: sha256(key.secret), token_type: "keyward_api_key", label: "true_positive" },
      { token_hash: sha256(notOurs), token_type: "keyward_api_key", label: "false_positive" },
      { token_hash: sha256("ghp_somethingelse"), token_type: "keyward_api_key", label: "false_positive" },
    ]);
    expect(res.text).not.toContain(key.secret);
    expect((await kw.admin("GET", `/keys/${key.id}`)).body.status).toBe("revoked");
    const alerts = await kw.admin("GET", `/alerts?key_id=${key.id}`);
    expect(alerts.body.items).toHaveLength(1);
    expect(alerts.body.items[0]).toMatchObject({ rule: "leak_report", severity: "critical", key_id: key.id });
    expect(JSON.stringify(alerts.body)).not.toContain(key.secret);
    const audit = await kw.admin("GET", "/audit?action=key.revoke");
    expect(audit.body.events.some((e: { actor: string }) => e.actor === `leak-report:${KEY_ID}`)).toBe(true);
    expect(JSON.stringify(audit.body)).not.toContain(key.secret);
  });

  it("a forged signature, an unknown key id or no signature → 401 and nothing revoked", async () => {
    const key = await issueKey(kw);
    const body = JSON.stringify([leak(key.secret)]);
    const forged = await report(kw, body, { "github-public-key-signature": sign(body, forger.privateKey) });
    expect(forged.status).toBe(401);
    expect(JSON.parse(forged.text).error.code).toBe("unauthorized");
    expect(forged.text).not.toContain(key.secret);
    expect((await report(kw, body, { "github-public-key-identifier": "other" })).status).toBe(401);
    expect((await report(kw, body, { "github-public-key-signature": "" })).status).toBe(401);
    // A signature over another body does not carry over.
    expect((await report(kw, body, { "github-public-key-signature": sign("[]") })).status).toBe(401);
    expect((await kw.admin("GET", `/keys/${key.id}`)).body.status).toBe("active");
  });

  it("a replayed report (the same signed body again) → 401", async () => {
    const key = await issueKey(kw);
    const body = JSON.stringify([leak(key.secret)]);
    expect((await report(kw, body)).status).toBe(200);
    const replay = await report(kw, body);
    expect(replay.status).toBe(401);
    expect(JSON.parse(replay.text).error.message).toBe("this report was already received");
  });

  it("bounds: more than 100 entries → 400, a body over 256 KiB → 413, malformed JSON → 400 (all signed)", async () => {
    const many = JSON.stringify(Array.from({ length: 101 }, () => leak("x")));
    expect((await report(kw, many)).status).toBe(400);
    const huge = JSON.stringify([{ ...leak("x"), url: "u".repeat(300 * 1024) }]);
    expect((await report(kw, huge)).status).toBe(413);
    expect((await report(kw, "[{")).status).toBe(400);
  });
});

describe("POST /v1/leaks (action: freeze, and disabled)", () => {
  it("freezes instead of revoking when configured", async () => {
    const kw = await startTestServer({}, { configFile: configFile("freeze") });
    try {
      const key = await issueKey(kw);
      expect((await report(kw, JSON.stringify([leak(key.secret)]))).status).toBe(200);
      expect((await kw.admin("GET", `/keys/${key.id}`)).body.status).toBe("frozen");
    } finally {
      await kw.close();
    }
  });

  it("without leaks configured the endpoint is a 404", async () => {
    const kw = await startTestServer();
    try {
      const res = await report(kw, JSON.stringify([leak("kwk_x")]));
      expect(res.status).toBe(404);
    } finally {
      await kw.close();
    }
  });
});
