import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, metric, newKey, setUpEcho } from "../../test-support/limits-gateway.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";
import { type ApiErrorBody, readJson } from "../../test-support/wire.js";
import { frozenClock } from "../clock.js";
import { ConfigError, loadConfig } from "../config.js";

// Wrong settings, and a KEYWARD_REDIS_URL that nothing answers at (a closed port, so these run
// without any Redis): Keyward starts anyway and applies rate_limit_fallback.

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("rate_limit_fallback setting", () => {
  it("defaults to closed; takes local from the environment or the config file", () => {
    expect(loadConfig({ env: {} }).rate_limit_fallback).toBe("closed");
    expect(loadConfig({ env: { KEYWARD_RATE_LIMIT_FALLBACK: "local" } }).rate_limit_fallback).toBe("local");
    const dir = mkdtempSync(join(tmpdir(), "kw-rlcfg-"));
    try {
      writeFileSync(join(dir, "k.yaml"), "rate_limit_fallback: local\n");
      expect(loadConfig({ env: {}, configFile: join(dir, "k.yaml") }).rate_limit_fallback).toBe("local");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses any other value, naming the setting", () => {
    const sources = { env: { KEYWARD_RATE_LIMIT_FALLBACK: "open" } };
    expect(() => loadConfig(sources)).toThrow(ConfigError);
    expect(() => loadConfig(sources)).toThrow(/^invalid configuration: KEYWARD_RATE_LIMIT_FALLBACK: /);
  });
});

describe("Redis unreachable from the start", () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  const servers: TestServer[] = [];
  const start = async (env: Record<string, string>) => {
    const kw = await startTestServer(
      { KEYWARD_REDIS_URL: `redis://127.0.0.1:${await closedPort()}`, ...env },
      { clock: frozenClock(Date.UTC(2030, 0, 1, 0, 0, 20)) },
    );
    servers.push(kw);
    await setUpEcho(kw, up.url);
    return kw;
  };

  beforeAll(async () => {
    up = await startUpstream();
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    await up?.close();
  });

  it("closed: starts, refuses keys with a rate limit or quota with 503 rate_limit_unavailable, serves the rest", async () => {
    const kw = await start({});
    const limited = await newKey(kw, { rate_limit: { limit: 100, window_s: 60 } });
    const quota = await newKey(kw, { quota: { limit: 100, period: "day" } });
    const free = await newKey(kw);
    for (const k of [limited, quota]) {
      const a = await call(kw, k.secret);
      expect([a.status, a.code]).toEqual([503, "rate_limit_unavailable"]);
      expect(a.headers.get("x-request-id")).toBeTruthy();
    }
    expect((await call(kw, free.secret)).status).toBe(200);
    expect(await metric(kw, "keyward_limits_redis_up")).toBe(0);

    // Forward-auth answers the same, with the code in X-Keyward-Code for proxies that remap statuses.
    const res = await fetch(`${kw.url}/v1/verify`, {
      headers: { authorization: `Bearer ${limited.secret}`, "x-original-uri": "/agents/echo/x" },
    });
    expect(res.status).toBe(503);
    expect(res.headers.get("x-keyward-code")).toBe("rate_limit_unavailable");
    expect((await readJson<ApiErrorBody>(res)).error.code).toBe("rate_limit_unavailable");
  });

  it("local: limits count in this process instead", async () => {
    const kw = await start({ KEYWARD_RATE_LIMIT_FALLBACK: "local" });
    const limited = await newKey(kw, { rate_limit: { limit: 2, window_s: 60 } });
    const quota = await newKey(kw, { quota: { limit: 1, period: "total" } });
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await call(kw, limited.secret));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 429]);
    expect(answers[2]?.code).toBe("rate_limited");
    expect((await call(kw, quota.secret)).status).toBe(200);
    expect((await call(kw, quota.secret)).code).toBe("quota_exceeded");
  });
});
