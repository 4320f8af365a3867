import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";
import { startUpstream } from "../../test-support/upstream.js";

/**
 * The core gateway flow started the way a user starts it on PostgreSQL (KEYWARD_DATABASE_URL +
 * KEYWARD_MASTER_KEY), in a schema of its own chosen through the URL's `options`; and the quota
 * that must survive a restart, on PostgreSQL and on SQLite.
 */

const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
const pgSkip = pgUrl ? undefined : "KEYWARD_TEST_DATABASE_URL is not set";
if (pgSkip) console.warn(`[gateway.postgres] PostgreSQL tests skipped: ${pgSkip}`);

let up: Awaited<ReturnType<typeof startUpstream>>;
const dirs: string[] = [];
const servers: TestServer[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "keyward-gw-"));
  dirs.push(dir);
  return dir;
}

async function start(dataDir: string, env: Record<string, string> = {}): Promise<TestServer> {
  const kw = await startTestServerAt(dataDir, env);
  servers.push(kw);
  return kw;
}

/** `url` with libpq `options` selecting `schema` (percent-encoded as a URL query value). */
function withSearchPath(url: string, schema: string): string {
  const sep = url.includes("?") ? "&" : "?";
  return `${url}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}

function call(kw: TestServer, path: string, secret: string): Promise<Response> {
  return fetch(`${kw.url}${path}`, { headers: { authorization: `Bearer ${secret}` } });
}

async function expectDenied(res: Response, status: number, code: string): Promise<void> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  const body = JSON.parse(text) as { error: { code: string; message: string; request_id: string } };
  expect(body.error.code).toBe(code);
  expect(body.error.request_id).toBe(res.headers.get("x-request-id"));
}

/** Agent `echo` and consumer `acme`; idempotent, so tests sharing a database stay independent. */
async function setUp(kw: TestServer): Promise<void> {
  expect([201, 409]).toContain(
    (await kw.admin("POST", "/agents", { name: "echo", upstream: `${up.url}/base` })).status,
  );
  expect([201, 409]).toContain((await kw.admin("POST", "/consumers", { name: "acme" })).status);
}

async function newKey(kw: TestServer, extra: Record<string, unknown> = {}): Promise<{ id: string; secret: string }> {
  const r = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"], ...extra });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return { id: r.body.key.id, secret: r.body.secret };
}

/** quota {limit: 3, period: total}: 2 calls, restart, 1 call, then quota_exceeded — on any store. */
async function quotaSurvivesRestart(startAgain: () => Promise<TestServer>, first: TestServer): Promise<void> {
  const k = await newKey(first, { quota: { limit: 3, period: "total" } });
  for (let i = 0; i < 2; i++) {
    const res = await call(first, "/agents/echo/q", k.secret);
    expect(res.status).toBe(200);
    await res.text();
  }
  await first.close();

  const second = await startAgain();
  const third = await call(second, "/agents/echo/q", k.secret);
  expect(third.status, await third.text()).toBe(200);
  const fourth = await call(second, "/agents/echo/q", k.secret);
  await expectDenied(fourth, 429, "quota_exceeded");
  expect(fourth.headers.get("retry-after")).toBeNull();
  await second.close();

  // And once more: the refusal itself must not have been counted away or lost.
  const third2 = await startAgain();
  await expectDenied(await call(third2, "/agents/echo/q", k.secret), 429, "quota_exceeded");
  await third2.close();
}

beforeAll(async () => {
  up = await startUpstream();
});
afterAll(async () => {
  for (const s of servers) await s.close().catch(() => {});
  await up?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(pgSkip)("gateway on PostgreSQL", () => {
  const schema = `kwgw_${randomBytes(5).toString("hex")}`;
  let url: string;
  let admin: pg.Client;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    url = withSearchPath(pgUrl as string, schema);
  });
  afterAll(async () => {
    await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await admin?.end();
  });

  it("pg honours `options` in the connection string (the schema is selected through the URL)", async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      expect((await c.query("SHOW search_path")).rows[0].search_path).toBe(schema);
    } finally {
      await c.end();
    }
  });

  it("refuses to start without KEYWARD_MASTER_KEY, naming the setting", async () => {
    await expect(start(tempDir(), { KEYWARD_DATABASE_URL: url, KEYWARD_MASTER_KEY: "" })).rejects.toThrow(
      /master.?key/i,
    );
  });

  it("admits, forwards with a JWT, and refuses a revoked key — also after a restart", async () => {
    const dataDir = tempDir();
    const kw = await start(dataDir, { KEYWARD_DATABASE_URL: url });
    // Keyward's tables live in the schema the URL chose, not in public.
    const tables = await admin.query("SELECT table_name FROM information_schema.tables WHERE table_schema = $1", [
      schema,
    ]);
    expect(tables.rows.map((r: { table_name: string }) => r.table_name)).toEqual(
      expect.arrayContaining(["agents", "consumers", "api_keys", "quota_usage", "audit_events"]),
    );

    await setUp(kw);
    const k = await newKey(kw);
    const before = up.seen.length;
    const ok = await call(kw, "/agents/echo/hello?x=1", k.secret);
    expect(ok.status).toBe(200);
    const seen = (await ok.json()) as { url: string; headers: Record<string, string> };
    expect(seen.url).toBe("/base/hello?x=1");
    expect(seen.headers.authorization).toMatch(/^Bearer eyJ/);
    expect(JSON.stringify(up.seen.slice(before))).not.toContain(k.secret);

    await expectDenied(await call(kw, "/agents/echo/x", "kwk_notakey"), 401, "invalid_key");
    expect((await kw.admin("POST", `/keys/${k.id}/revoke`)).status).toBe(200);
    await expectDenied(await call(kw, "/agents/echo/hello", k.secret), 401, "key_revoked");
    await kw.close();

    const again = await start(dataDir, { KEYWARD_DATABASE_URL: url });
    await expectDenied(await call(again, "/agents/echo/hello", k.secret), 401, "key_revoked");
    const fresh = await newKey(again);
    const res = await call(again, "/agents/echo/hello", fresh.secret);
    expect(res.status).toBe(200);
    await res.text();
    await again.close();
  });

  it("a quota of 3 in total survives a restart: 2 calls, restart, 1 call, then quota_exceeded", async () => {
    const dataDir = tempDir();
    const first = await start(dataDir, { KEYWARD_DATABASE_URL: url });
    await setUp(first);
    await quotaSurvivesRestart(() => start(dataDir, { KEYWARD_DATABASE_URL: url }), first);
    const usage = await admin.query(`SELECT used FROM ${schema}.quota_usage`);
    expect(usage.rows.map((r: { used: string }) => Number(r.used))).toEqual([3]);
  });

  it("two replicas started at once on an empty schema both come up and share keys", async () => {
    const fresh = `kwgw_${randomBytes(5).toString("hex")}`;
    await admin.query(`CREATE SCHEMA ${fresh}`);
    try {
      const freshUrl = withSearchPath(pgUrl as string, fresh);
      const [a, b] = await Promise.all([
        start(tempDir(), { KEYWARD_DATABASE_URL: freshUrl }),
        start(tempDir(), { KEYWARD_DATABASE_URL: freshUrl }),
      ]);
      await setUp(a);
      const k = await newKey(a);
      const res = await call(b, "/agents/echo/replica", k.secret);
      expect(res.status, await res.text()).toBe(200);
      await Promise.all([a.close(), b.close()]);
    } finally {
      await admin.query(`DROP SCHEMA ${fresh} CASCADE`);
    }
  });

  it("NUL characters in ids and names answer 400/404 on PostgreSQL, never 500", async () => {
    const kw = await start(tempDir(), { KEYWARD_DATABASE_URL: url });
    await setUp(kw);
    const k = await newKey(kw, { scopes: ["agent:*"] });
    const statuses: Array<[string, number]> = [];
    const probe = async (label: string, method: string, path: string, body?: unknown) => {
      statuses.push([label, (await kw.admin(method, path, body)).status]);
    };
    await probe("GET agent %00", "GET", "/agents/a%00b");
    await probe("GET consumer %00", "GET", "/consumers/a%00b");
    await probe("GET key %00", "GET", "/keys/key_%00");
    await probe("revoke key %00", "POST", "/keys/key_%00/revoke");
    await probe("key name with NUL", "POST", "/keys", { owner: "consumer:acme", scopes: [], name: "a\u0000b" });
    await probe("patched key name with NUL", "PATCH", `/keys/${k.id}`, { name: "a\u0000b" });
    await probe("agent description with NUL", "POST", "/agents", {
      name: "nul-desc",
      upstream: "http://127.0.0.1:9",
      description: "a\u0000b",
    });
    await probe("agent upstream with NUL", "POST", "/agents", {
      name: "nul-up",
      upstream: "http://127.0.0.1:9/a\u0000b",
    });
    await probe("consumer metadata with NUL", "POST", "/consumers", { name: "nul-meta", metadata: { a: "x\u0000y" } });
    await probe("audit filter with NUL", "GET", "/audit?principal=a%00b");
    const gw = await call(kw, "/agents/a%00b/x", k.secret);
    statuses.push(["gateway agent %00", gw.status]);
    await gw.text();
    expect(statuses).toHaveLength(11);
    expect(statuses.filter(([, status]) => status >= 500)).toEqual([]);
    await kw.close();
  });
});

describe("quota across a restart on SQLite (same data dir)", () => {
  it("a quota of 3 in total survives a restart: 2 calls, restart, 1 call, then quota_exceeded", async () => {
    const dataDir = tempDir();
    const first = await start(dataDir);
    await setUp(first);
    await quotaSurvivesRestart(() => start(dataDir), first);
  });
});
