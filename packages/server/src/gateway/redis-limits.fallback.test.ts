import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, newKey, redisUp, setUpEcho } from "../../test-support/limits-gateway.js";
import { redisServerSkip, startRedisServer } from "../../test-support/redis-server.js";
import type { TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";
import { startUpstream } from "../../test-support/upstream.js";
import { frozenClock } from "../clock.js";

// Issue 18 finding 8a, the way a user runs it: two replicas on one PostgreSQL schema and a Redis
// of the test's own, rate_limit_fallback=local. Redis is killed mid-window after it has used the
// window up: the replicas then admitted N more each (18 for N = 6, R = 2) where operations.md
// promises at most R × N = 12. Each now starts from the count Redis last gave it.
const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
const skip = !pgUrl ? "KEYWARD_TEST_DATABASE_URL is not set" : redisServerSkip;
if (skip) console.warn(`[redis-limits.fallback] two-replica fallback test skipped: ${skip}`);

// 20 s into a minute: the frozen clock keeps every request in one 60 s window.
const T0 = Date.UTC(2030, 0, 1, 0, 0, 20);

describe.skipIf(skip)("rate_limit_fallback=local after Redis goes away mid-window (two replicas)", () => {
  const schema = `kwrf_${randomBytes(5).toString("hex")}`;
  const dirs: string[] = [];
  let admin: pg.Client;
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let redis: Awaited<ReturnType<typeof startRedisServer>>;
  let a: TestServer;
  let b: TestServer;

  const replica = async (): Promise<TestServer> => {
    const dir = mkdtempSync(join(tmpdir(), "keyward-rlf-"));
    dirs.push(dir);
    const url = `${pgUrl}${pgUrl?.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    return startTestServerAt(
      dir,
      { KEYWARD_DATABASE_URL: url, KEYWARD_REDIS_URL: redis.url, KEYWARD_RATE_LIMIT_FALLBACK: "local" },
      { clock: frozenClock(T0) },
    );
  };

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    up = await startUpstream();
    redis = await startRedisServer();
    a = await replica();
    b = await replica();
    await setUpEcho(a, up.url);
    await redisUp(a);
    await redisUp(b);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await redis?.close();
    await up?.close();
    await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin?.end();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const admitted = async (kw: TestServer, secret: string, n: number): Promise<number> => {
    let ok = 0;
    for (let i = 0; i < n; i++) {
      const r = await call(kw, secret);
      expect([200, 429]).toContain(r.status);
      if (r.status === 200) ok++;
    }
    return ok;
  };

  it("admits at most R × N in the window: each replica goes on from what Redis last told it", async () => {
    const N = 6;
    const k = await newKey(a, { rate_limit: { limit: N, window_s: 60 } });
    expect(await admitted(a, k.secret, 4)).toBe(4); // Redis: 4 (a last saw 4)
    expect(await admitted(b, k.secret, 3)).toBe(2); // Redis: 6 = N (b saw 6, then a refusal at 6)

    await redis.kill();
    const local = (await admitted(a, k.secret, 10)) + (await admitted(b, k.secret, 10));
    expect(local).toBe(2); // a: 6 - 4; b: none
    const total = 6 + local;
    expect(total).toBeLessThanOrEqual(2 * N);
    // A refusal still carries the window's own reset, not a fresh one.
    expect((await call(b, k.secret)).headers.get("retry-after")).toBe("40");
  });
});
