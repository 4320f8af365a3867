import { randomBytes } from "node:crypto";
import net from "node:net";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, newKey, setUpEcho } from "../../test-support/limits-gateway.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";
import { createLogger } from "../ops/logger.js";

// The Redis password and callers' keys never leave Keyward through the limits path: not in logs,
// not in error bodies, not in Redis key names.
const redisUrl = process.env.KEYWARD_TEST_REDIS_URL;
if (!redisUrl) console.warn("[redis-limits.security] Redis key-name test skipped: KEYWARD_TEST_REDIS_URL is not set");

let up: Awaited<ReturnType<typeof startUpstream>>;
const servers: TestServer[] = [];
beforeAll(async () => {
  up = await startUpstream();
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await up?.close();
});

describe("limits and secrets", () => {
  it("an unreachable Redis URL's password is in no log line and no response", async () => {
    const password = `pw-${randomBytes(12).toString("hex")}`;
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));

    const lines: string[] = [];
    const logger = createLogger({ level: "trace", destination: { write: (s: string) => lines.push(s) } });
    const kw = await startTestServer({ KEYWARD_REDIS_URL: `redis://:${password}@127.0.0.1:${port}` }, { logger });
    servers.push(kw);
    await setUpEcho(kw, up.url);
    const k = await newKey(kw, { rate_limit: { limit: 5, window_s: 60 } });
    const res = await fetch(`${kw.url}/agents/echo/x`, { headers: { authorization: `Bearer ${k.secret}` } });
    const body = await res.text();
    expect(res.status).toBe(503);
    expect(body).not.toContain(password);
    expect(lines.some((l) => l.includes("redis (rate limits, quotas) unavailable"))).toBe(true);
    const all = lines.join("\n");
    expect(all).not.toContain(password);
    expect(all).not.toContain(k.secret);
  });

  it.skipIf(!redisUrl)("Redis key names carry the key's id, never the key or its hash", async () => {
    const prefix = `kwtest:${randomBytes(6).toString("hex")}:`;
    const kw = await startTestServer({ KEYWARD_REDIS_URL: redisUrl as string }, { redisKeyPrefix: prefix });
    servers.push(kw);
    await setUpEcho(kw, up.url);
    const k = await newKey(kw, { rate_limit: { limit: 5, window_s: 60 }, quota: { limit: 5, period: "day" } });
    expect((await call(kw, k.secret)).status).toBe(200);
    const probe = new Redis(redisUrl as string);
    try {
      const keys = await probe.keys(`${prefix}*`);
      expect(keys).toHaveLength(2);
      for (const name of keys) {
        expect(name).toContain(k.id);
        expect(name).not.toContain(k.secret);
        expect(name).not.toContain(k.secret.slice(4, 20));
        expect(name).not.toMatch(/[0-9a-f]{64}/);
      }
      await probe.del(...keys);
    } finally {
      probe.disconnect();
    }
  });
});
