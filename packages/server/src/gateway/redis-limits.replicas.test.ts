import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Answer, call, newKey, setUpEcho } from "../../test-support/limits-gateway.js";
import type { TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";
import { startUpstream } from "../../test-support/upstream.js";
import { frozenClock } from "../clock.js";

// Two gateways on one PostgreSQL schema sharing one Redis, as two replicas behind a load balancer:
// a limit of N admits exactly N between them, in one window and per quota period.
const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
const redisUrl = process.env.KEYWARD_TEST_REDIS_URL;
const skip = !pgUrl
  ? "KEYWARD_TEST_DATABASE_URL is not set"
  : !redisUrl
    ? "KEYWARD_TEST_REDIS_URL is not set"
    : undefined;
if (skip) console.warn(`[redis-limits.replicas] two-replica limit tests skipped: ${skip}`);

const T0 = Date.UTC(2030, 0, 1, 0, 0, 20);

describe.skipIf(skip)("limits across two replicas (PostgreSQL + Redis)", () => {
  const schema = `kwrl_${randomBytes(5).toString("hex")}`;
  const prefix = `kwtest:${randomBytes(6).toString("hex")}:`;
  const dirs: string[] = [];
  let admin: pg.Client;
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let a: TestServer;
  let b: TestServer;

  const replica = async (): Promise<TestServer> => {
    const dir = mkdtempSync(join(tmpdir(), "keyward-rlr-"));
    dirs.push(dir);
    const url = `${pgUrl}${pgUrl?.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    return startTestServerAt(
      dir,
      { KEYWARD_DATABASE_URL: url, KEYWARD_REDIS_URL: redisUrl as string },
      { clock: frozenClock(T0), redisKeyPrefix: prefix },
    );
  };

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    up = await startUpstream();
    a = await replica();
    b = await replica();
    await setUpEcho(a, up.url);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await up?.close();
    await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin?.end();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** `n` concurrent calls, alternating replicas, on caches that have never seen the key. */
  const burst = (secret: string, n: number): Promise<Answer[]> =>
    Promise.all(Array.from({ length: n }, (_, i) => call(i % 2 === 0 ? a : b, secret)));

  it("a rate limit of 5 admits exactly 5 of 40 concurrent requests across both, with consistent headers", async () => {
    const k = await newKey(a, { rate_limit: { limit: 5, window_s: 60 } });
    const answers = await burst(k.secret, 40);
    const admitted = answers.filter((x) => x.status === 200);
    expect(admitted).toHaveLength(5);
    expect(admitted.map((x) => x.headers.get("ratelimit-remaining")).sort()).toEqual(["0", "1", "2", "3", "4"]);
    for (const x of answers.filter((y) => y.status !== 200)) {
      expect([x.status, x.code]).toEqual([429, "rate_limited"]);
      expect(x.headers.get("retry-after")).toBe("40");
      expect(x.headers.get("ratelimit-limit")).toBe("5");
    }
    // Both replicas took part in admitting and refusing.
    expect(answers.filter((_, i) => i % 2 === 0).some((x) => x.status === 429)).toBe(true);
    expect(answers.filter((_, i) => i % 2 === 1).some((x) => x.status === 429)).toBe(true);
  });

  it("a quota of 6 admits exactly 6 across both; the store ends with the same count", async () => {
    const k = await newKey(a, { quota: { limit: 6, period: "month" } });
    const first = await burst(k.secret, 4);
    expect(first.every((x) => x.status === 200)).toBe(true);
    const rest = await burst(k.secret, 20);
    expect(rest.filter((x) => x.status === 200)).toHaveLength(2);
    for (const x of rest.filter((y) => y.status !== 200)) expect([x.status, x.code]).toEqual([429, "quota_exceeded"]);

    // Each replica writes back what it admitted: the durable total is the global one.
    await Promise.all([a.close(), b.close()]);
    const rows = await admin.query(`SELECT used FROM ${schema}.quota_usage WHERE key_id = $1`, [k.id]);
    expect(rows.rows.map((r: { used: string }) => Number(r.used))).toEqual([6]);
  });
});
