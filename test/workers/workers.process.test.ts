// `keyward serve --workers 2`: two processes on one port, as a user starts them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstream } from "../../packages/server/test-support/upstream.js";
import { freshSchema, skipReason } from "../replicas/harness.js";
import { calls, type Served, serve, stopAll, until, workersInAccessLog } from "./harness.js";

const LOGS = { KEYWARD_LOG_LEVEL: "info", KEYWARD_LOG_FORMAT: "json", KEYWARD_ACCESS_LOG: "1" };
const ALL_OK = { status: 200, code: undefined };
const REVOKED = { status: 401, code: "key_revoked" };

async function setUp(s: Served, upstream: string): Promise<void> {
  expect((await s.admin("POST", "/agents", { name: "echo", upstream })).status).toBe(201);
  expect((await s.admin("POST", "/consumers", { name: "c" })).status).toBe(201);
}

async function newKey(s: Served): Promise<{ id: string; secret: string }> {
  const res = await s.admin("POST", "/keys", { owner: "consumer:c", scopes: ["agent:*"] });
  expect(res.status).toBe(201);
  return { id: res.body.key.id, secret: res.body.secret };
}

/** Both workers cached the key, the revoke answered as fully published, and every later call is refused. */
async function revokeIsSeenByEveryWorker(s: Served): Promise<void> {
  const k = await newKey(s);
  expect(await calls(s, k.secret, 10)).toEqual(Array(10).fill(ALL_OK));
  const res = await s.admin("POST", `/keys/${k.id}/revoke`);
  expect(res.status).toBe(200);
  expect(res.headers.get("keyward-propagation")).toBeNull();
  expect(await calls(s, k.secret, 20)).toEqual(Array(20).fill(REVOKED));
}

describe("keyward serve --workers 2 on SQLite", () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let s: Served;

  beforeAll(async () => {
    up = await startUpstream();
    s = await serve(["--workers", "2"], LOGS);
    await setUp(s, up.url);
  });
  afterAll(async () => {
    await stopAll();
    await up?.close();
  });

  it("serves from both workers on one port", async () => {
    expect(s.workerPids()).toHaveLength(2);
    const k = await newKey(s);
    const before = s.stderr().length;
    expect(await calls(s, k.secret, 20)).toEqual(Array(20).fill(ALL_OK));
    expect([...workersInAccessLog(s.stderr().slice(before))].sort()).toEqual([1, 2]);
  });

  it("GET /metrics sums every worker's counters, whichever worker answers", async () => {
    const decisions = async () => {
      const text = await (await fetch(`${s.url}/metrics`, { headers: { connection: "close" } })).text();
      let sum = 0;
      for (const m of text.matchAll(/^keyward_gateway_decisions_total(?:\{[^}]*\})? (\S+)$/gm)) sum += Number(m[1]);
      return sum;
    };
    const before = await decisions();
    const k = await newKey(s);
    expect(await calls(s, k.secret, 20)).toEqual(Array(20).fill(ALL_OK));
    // Successive scrapes go to both workers (new connections, round-robin): each sees all 20.
    for (let i = 0; i < 4; i++) expect((await decisions()) - before).toBe(20);
  });

  it("a revoke reaches both workers before the admin call answers", async () => {
    await revokeIsSeenByEveryWorker(s);
  });

  it("the audit chain verifies after traffic and admin changes on both workers", async () => {
    const k = await newKey(s);
    await calls(s, k.secret, 20);
    for (let i = 0; i < 6; i++) await newKey(s);
    const v = await s.admin("GET", "/audit/verify");
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({ ok: true });
    expect(v.body.count).toBeGreaterThan(10);
  });

  it("a killed worker is replaced, the server keeps answering, and no acknowledged write is lost", async () => {
    const [victim, survivor] = s.workerPids() as [number, number];
    // Admin writes while one worker is killed: every key answered 201 must exist afterwards.
    const acknowledged: string[] = [];
    const writes = (async () => {
      for (let i = 0; i < 30; i++) {
        const res = await s.admin("POST", "/keys", { owner: "consumer:c", scopes: ["agent:*"] }).catch(() => undefined);
        if (res?.status === 201) acknowledged.push(res.body.key.id);
      }
    })();
    await until(
      "a few writes",
      () => acknowledged.length,
      (n) => n >= 5,
      10_000,
    );
    process.kill(victim, "SIGKILL");
    await writes;
    const pids = await until(
      "a replacement worker",
      () => s.workerPids(),
      (p) => p.length === 2 && !p.includes(victim) && p.includes(survivor),
      15_000,
    );
    const replacement = pids.find((p) => p !== survivor);
    expect(s.stderr()).toContain("worker exited unexpectedly");
    await until(
      "the replacement listening",
      s.stderr,
      (e) => e.includes(`"pid":${replacement},"msg":"worker listening"`),
      15_000,
    );
    expect(acknowledged.length).toBeGreaterThanOrEqual(5);
    for (const id of acknowledged) expect((await s.admin("GET", `/keys/${id}`)).status).toBe(200);
    const k = await newKey(s);
    const before = s.stderr().length;
    expect(await calls(s, k.secret, 20)).toEqual(Array(20).fill(ALL_OK));
    expect([...workersInAccessLog(s.stderr().slice(before))].sort()).toEqual([1, 2]);
    // The replacement hears changes too.
    await revokeIsSeenByEveryWorker(s);
    expect((await s.admin("GET", "/audit/verify")).body).toMatchObject({ ok: true });
  });

  it("SIGTERM to the primary drains every worker and exits 0", async () => {
    const workers = s.workerPids();
    s.child.kill("SIGTERM");
    const code = await s.exited;
    expect(code, s.stderr().slice(-3000)).toBe(0);
    for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow();
  });
});

const pgSkip = skipReason();
if (pgSkip) console.warn(`[workers] PostgreSQL cases skipped: ${pgSkip}`);

describe.skipIf(pgSkip !== undefined)("keyward serve --workers 2 on PostgreSQL", () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let s: Served;

  beforeAll(async () => {
    schema = await freshSchema();
    up = await startUpstream();
    // A reconcile interval far beyond the test: the change log cannot be what tells the other worker.
    s = await serve(["--workers", "2"], {
      ...LOGS,
      KEYWARD_DATABASE_URL: schema.url,
      KEYWARD_RECONCILE_INTERVAL_MS: "60000",
      KEYWARD_MAX_STALENESS_MS: "120000",
    });
    await setUp(s, up.url);
  });
  afterAll(async () => {
    await stopAll();
    await up?.close();
    await schema?.drop();
  });

  it("serves from both workers, a revoke reaches both, and the audit chain verifies", async () => {
    const k = await newKey(s);
    const before = s.stderr().length;
    expect(await calls(s, k.secret, 20)).toEqual(Array(20).fill(ALL_OK));
    expect([...workersInAccessLog(s.stderr().slice(before))].sort()).toEqual([1, 2]);
    const res = await s.admin("POST", `/keys/${k.id}/revoke`);
    expect(res.status).toBe(200);
    expect(res.headers.get("keyward-propagation")).toBeNull();
    // Relayed by the primary before the admin call answered: no wait, on either worker.
    expect(await calls(s, k.secret, 20)).toEqual(Array(20).fill(REVOKED));
    expect((await s.admin("GET", "/audit/verify")).body).toMatchObject({ ok: true });
  });

  it("SIGTERM drains every worker and exits 0", async () => {
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
  });
});
