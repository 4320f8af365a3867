// Limits shared by the workers of one `keyward serve --workers 2` without Redis: the primary lends
// permits from one bank (workers/ipc-permit-bank.ts), so a limit of N admits N across both workers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstream } from "../../packages/server/test-support/upstream.js";
import { calls, type Served, serve, stopAll, until, workersInAccessLog } from "./harness.js";

const LOGS = { KEYWARD_LOG_LEVEL: "info", KEYWARD_LOG_FORMAT: "json", KEYWARD_ACCESS_LOG: "1" };

describe("keyward serve --workers 2 without Redis: limits shared through the primary", () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let s: Served;

  beforeAll(async () => {
    up = await startUpstream();
    s = await serve(["--workers", "2"], LOGS);
    expect((await s.admin("POST", "/agents", { name: "echo", upstream: up.url })).status).toBe(201);
    expect((await s.admin("POST", "/consumers", { name: "c" })).status).toBe(201);
  });
  afterAll(async () => {
    await stopAll();
    await up?.close();
  });

  async function keyWith(limits: Record<string, unknown>): Promise<string> {
    const res = await s.admin("POST", "/keys", { owner: "consumer:c", scopes: ["agent:*"], ...limits });
    expect(res.status).toBe(201);
    return res.body.secret;
  }

  const count = (rs: Array<{ status: number; code: string | undefined }>, code?: string) =>
    rs.filter((r) => (code === undefined ? r.status === 200 : r.code === code)).length;

  it("a small rate limit admits exactly its limit across both workers", async () => {
    const secret = await keyWith({ rate_limit: { limit: 20, window_s: 3600 } });
    const before = s.stderr().length;
    const rs = await calls(s, secret, 40);
    expect([...workersInAccessLog(s.stderr().slice(before))].sort()).toEqual([1, 2]);
    expect(count(rs)).toBe(20);
    expect(count(rs, "rate_limited")).toBe(20);
  });

  it("a leased rate limit never admits more than limit + the stated bound (10 % here)", async () => {
    const secret = await keyWith({ rate_limit: { limit: 400, window_s: 3600 } });
    const rs = await calls(s, secret, 500);
    // limits/lease-sizing.ts: 2 processes, fraction 0.1 → at most 2 × ⌊40 / 2⌋ = 40 more.
    expect(count(rs)).toBeLessThanOrEqual(440);
    expect(count(rs)).toBeGreaterThanOrEqual(360);
    expect(count(rs) + count(rs, "rate_limited")).toBe(500);
  });

  it("a quota is shared across both workers and survives a worker's restart", async () => {
    const secret = await keyWith({ quota: { limit: 10, period: "month" } });
    const rs = await calls(s, secret, 20);
    expect(count(rs)).toBe(10);
    expect(count(rs, "quota_exceeded")).toBe(10);
    const [victim, survivor] = s.workerPids() as [number, number];
    process.kill(victim, "SIGKILL");
    const pids = await until(
      "a replacement worker",
      () => s.workerPids(),
      (p) => p.length === 2 && !p.includes(victim),
      15_000,
    );
    const replacement = pids.find((p) => p !== survivor);
    await until(
      "the replacement listening",
      s.stderr,
      (e) => e.includes(`"pid":${replacement},"msg":"worker listening"`),
      15_000,
    );
    expect(count(await calls(s, secret, 10), "quota_exceeded")).toBe(10);
  });
});

const redisUrl = process.env.KEYWARD_TEST_REDIS_URL;
if (!redisUrl) console.warn("[workers] Redis cases skipped: KEYWARD_TEST_REDIS_URL is not set");

describe.skipIf(!redisUrl)("keyward serve --workers 2 with Redis: each worker leases from Redis like a replica", () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let s: Served;

  beforeAll(async () => {
    up = await startUpstream();
    s = await serve(["--workers", "2"], { ...LOGS, KEYWARD_REDIS_URL: redisUrl as string });
    expect((await s.admin("POST", "/agents", { name: "echo", upstream: up.url })).status).toBe(201);
    expect((await s.admin("POST", "/consumers", { name: "c" })).status).toBe(201);
  });
  afterAll(async () => {
    await stopAll();
    await up?.close();
  });

  it("a rate limit and a quota admit exactly their limit across both workers", async () => {
    const res = await s.admin("POST", "/keys", {
      owner: "consumer:c",
      scopes: ["agent:*"],
      rate_limit: { limit: 20, window_s: 3600 },
    });
    const before = s.stderr().length;
    const rs = await calls(s, res.body.secret, 40);
    expect([...workersInAccessLog(s.stderr().slice(before))].sort()).toEqual([1, 2]);
    expect(rs.filter((r) => r.status === 200)).toHaveLength(20);
    expect(rs.filter((r) => r.code === "rate_limited")).toHaveLength(20);
    const q = await s.admin("POST", "/keys", {
      owner: "consumer:c",
      scopes: ["agent:*"],
      quota: { limit: 10, period: "month" },
    });
    const qs = await calls(s, q.body.secret, 20);
    expect(qs.filter((r) => r.status === 200)).toHaveLength(10);
    expect(qs.filter((r) => r.code === "quota_exceeded")).toHaveLength(10);
  });
});
