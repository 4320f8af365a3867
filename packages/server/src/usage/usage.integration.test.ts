import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";
import { startUpstream } from "../../test-support/upstream.js";

/**
 * Usage as an operator sees it: real requests through the gateway, counted on the replica that
 * served them, read back through the admin API (on SQLite, and from every one of three replicas
 * on one PostgreSQL). Counts reach the store every `usage.flush_interval_ms`; the tests wait for
 * the API to show them, bounded by SPEC §10's 10 s.
 */

const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
const pgSkip = pgUrl ? undefined : "KEYWARD_TEST_DATABASE_URL is not set";
if (pgSkip) console.warn(`[usage.integration] PostgreSQL replicas skipped: ${pgSkip}`);

const SPEC_BOUND_MS = 10_000;
let up: Awaited<ReturnType<typeof startUpstream>>;
const dir = mkdtempSync(join(tmpdir(), "keyward-usage-"));
const configFile = join(dir, "keyward.yaml");
writeFileSync(configFile, "usage:\n  flush_interval_ms: 200\n");

beforeAll(async () => {
  up = await startUpstream();
});
afterAll(async () => {
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function setUp(kw: TestServer): Promise<{ id: string; secret: string }> {
  expect([201, 409]).toContain(
    (await kw.admin("POST", "/agents", { name: "echo", upstream: `${up.url}/base` })).status,
  );
  expect([201, 409]).toContain((await kw.admin("POST", "/consumers", { name: "acme" })).status);
  const issued = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"] });
  expect(issued.status).toBe(201);
  return { id: issued.body.key.id, secret: issued.body.secret };
}

function call(kw: TestServer, agent: string, secret: string): Promise<Response> {
  return fetch(`${kw.url}/agents/${agent}/echo`, { headers: { authorization: `Bearer ${secret}` } });
}

async function today(kw: TestServer, id: string) {
  const res = await kw.admin("GET", `/keys/${id}/usage?step=1d`);
  expect(res.status).toBe(200);
  return res.body.items.at(-1) as { t: string; allowed: number; denied: Record<string, number> };
}

describe("usage through the gateway, on SQLite", () => {
  let kw: TestServer;
  let key: { id: string; secret: string };
  beforeAll(async () => {
    kw = await startTestServer({}, { configFile });
    key = await setUp(kw);
  });
  afterAll(() => kw?.close());

  it("counts allowed requests and denials by code, and where they came from", async () => {
    for (let i = 0; i < 5; i++) expect((await call(kw, "echo", key.secret)).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await call(kw, "billing", key.secret)).status).toBe(403);
    await expect
      .poll(() => today(kw, key.id), { timeout: SPEC_BOUND_MS, interval: 50 })
      .toMatchObject({
        allowed: 5,
        denied: { scope_denied: 2 },
      });
    const minutes = await kw.admin("GET", `/keys/${key.id}/usage?step=1m`);
    expect(minutes.body.items).toHaveLength(60);
    const last = minutes.body.items.at(-1);
    expect(Date.parse(last.t) % 60_000).toBe(0);
    expect(last).toMatchObject({ allowed: 5, denied: { scope_denied: 2 } });

    const addresses = await kw.admin("GET", `/keys/${key.id}/addresses`);
    expect(addresses.body.items).toEqual([
      { ip: "127.0.0.1", first_seen: expect.any(String), last_seen: expect.any(String), count: 7 },
    ]);
    const top = await kw.admin("GET", "/usage?group_by=key&top=5");
    expect(top.body.items[0]).toEqual({
      id: key.id,
      allowed: 5,
      denied: 2,
      denied_by_code: { scope_denied: 2 },
    });
    const byAgent = await kw.admin("GET", "/usage?group_by=agent");
    expect(byAgent.body.items.map((g: { id: string }) => g.id)).toEqual(["echo", "billing"]);
    const byConsumer = await kw.admin("GET", "/usage?group_by=consumer");
    expect(byConsumer.body.items[0]).toMatchObject({ id: "consumer:acme", allowed: 5, denied: 2 });
  });

  it("a frozen key's refusals count against it", async () => {
    const other = await setUp(kw);
    expect((await kw.admin("POST", `/keys/${other.id}/freeze`)).status).toBe(200);
    expect((await call(kw, "echo", other.secret)).status).toBe(401);
    await expect
      .poll(() => today(kw, other.id), { timeout: SPEC_BOUND_MS, interval: 50 })
      .toMatchObject({ allowed: 0, denied: { key_frozen: 1 } });
  });

  it("counts credential reads too: an agent's key let in, a revoked key refused", async () => {
    const issued = await kw.admin("POST", "/keys", { owner: "agent:echo", scopes: [] });
    const read = (secret: string) =>
      fetch(`${kw.url}/v1/credentials`, { headers: { authorization: `Bearer ${secret}` } }).then((r) => r.status);
    expect([await read(issued.body.secret), await read(issued.body.secret)]).toEqual([200, 200]);
    expect((await kw.admin("POST", `/keys/${issued.body.key.id}/revoke`)).status).toBe(200);
    expect(await read(issued.body.secret)).toBe(401);
    await expect
      .poll(() => today(kw, issued.body.key.id), { timeout: SPEC_BOUND_MS, interval: 50 })
      .toMatchObject({ allowed: 2, denied: { key_revoked: 1 } });
  });

  it("answers bad queries with 400 invalid_request saying what is wrong, an unknown key with 404", async () => {
    const cases: Array<[string, string]> = [
      [`/keys/${key.id}/usage?step=5m`, "query.step: must be 1m, 1h or 1d"],
      [`/keys/${key.id}/usage?from=yesterday`, "query.from: must be an RFC 3339 time"],
      [`/keys/${key.id}/usage?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z`, "query.from: must be before to"],
      [`/keys/${key.id}/usage?step=1m&from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z`, "at most 1440 per request"],
      [`/keys/${key.id}/usage?limit=5`, "query"],
      ["/usage?group_by=owner", "query.group_by: must be key, agent or consumer"],
      ["/usage?top=0", "query.top"],
      ["/usage?top=1001", "query.top"],
    ];
    for (const [path, message] of cases) {
      const res = await kw.admin("GET", path);
      expect(res.status, path).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
      expect(res.body.error.message, path).toContain(message);
    }
    for (const path of ["/keys/key_nosuchkey/usage", "/keys/key_nosuchkey/addresses"]) {
      const res = await kw.admin("GET", path);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe("not_found");
    }
  });
});

describe.skipIf(pgSkip !== undefined)("usage on three replicas sharing one PostgreSQL", () => {
  const schema = `kwt_usage_${Math.random().toString(16).slice(2, 10)}`;
  const replicas: TestServer[] = [];
  const dirs: string[] = [];
  let admin: pg.Client;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const url = `${pgUrl}${pgUrl?.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    for (let i = 0; i < 3; i++) {
      const d = mkdtempSync(join(tmpdir(), "keyward-usage-rep-"));
      dirs.push(d);
      replicas.push(await startTestServerAt(d, { KEYWARD_DATABASE_URL: url }, { configFile }));
    }
  });
  afterAll(async () => {
    for (const r of replicas) await r.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin?.end();
  });

  it("each replica serves part of one key's traffic; every replica's API reports the exact sum", async () => {
    const [first] = replicas as [TestServer];
    const key = await setUp(first);
    const shares = [4, 5, 6];
    await Promise.all(
      replicas.map(async (r, i) => {
        for (let n = 0; n < (shares[i] ?? 0); n++) expect((await call(r, "echo", key.secret)).status).toBe(200);
        expect((await call(r, "billing", key.secret)).status).toBe(403);
      }),
    );
    for (const r of replicas) {
      await expect
        .poll(() => today(r, key.id), { timeout: SPEC_BOUND_MS, interval: 50 })
        .toMatchObject({ allowed: 15, denied: { scope_denied: 3 } });
    }
    const addresses = await replicas[2]?.admin("GET", `/keys/${key.id}/addresses`);
    expect(addresses?.body.items).toEqual([expect.objectContaining({ ip: "127.0.0.1", count: 18 })]);
  });
});
