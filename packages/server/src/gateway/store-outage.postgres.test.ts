import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";
import { startRelay } from "../../test-support/tcp-relay.js";
import { startUpstream } from "../../test-support/upstream.js";
import { type ApiErrorBody, readJson } from "../../test-support/wire.js";

// PostgreSQL goes away under a running Keyward (a relay we cut), then comes back: cached keys go
// on working, everything that needs the store answers 503 store_unavailable (never a 500, never
// half a change), and service recovers without a restart.
const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
if (!pgUrl) console.warn("[store-outage] PostgreSQL tests skipped: KEYWARD_TEST_DATABASE_URL is not set");

describe.skipIf(!pgUrl)("PostgreSQL outage", () => {
  const schema = `kwt_outage_${randomBytes(4).toString("hex")}`;
  let admin: pg.Client;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let kw: TestServer;
  let dataDir: string;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const target = new URL(pgUrl as string);
    relay = await startRelay({ host: target.hostname, port: Number(target.port || 5432) });
    target.hostname = "127.0.0.1";
    target.port = String(relay.port);
    target.searchParams.set("options", `-c search_path=${schema}`);
    up = await startUpstream();
    dataDir = mkdtempSync(join(tmpdir(), "keyward-outage-"));
    kw = await startTestServerAt(dataDir, { KEYWARD_DATABASE_URL: target.toString() });
  });

  afterAll(async () => {
    await kw?.close();
    await relay?.close();
    await up?.close();
    await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin?.end();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps cached keys working, answers 503 for what needs the store, and recovers", async () => {
    expect((await kw.admin("POST", "/agents", { name: "echo", upstream: up.url })).status).toBe(201);
    expect((await kw.admin("POST", "/consumers", { name: "c" })).status).toBe(201);
    const make = async () =>
      (await kw.admin("POST", "/keys", { owner: "consumer:c", scopes: ["agent:echo"] })).body.secret as string;
    const warm = await make();
    const cold = await make();
    const call = (secret: string) => fetch(`${kw.url}/agents/echo/x`, { headers: { "x-api-key": secret } });
    expect((await call(warm)).status).toBe(200);

    await relay.cut();
    try {
      // Memory only: the cached key and its agent still pass.
      expect((await call(warm)).status).toBe(200);
      // A key never seen needs the store.
      const miss = await call(cold);
      expect(miss.status).toBe(503);
      expect((await readJson<ApiErrorBody>(miss)).error.code).toBe("store_unavailable");
      // Admin writes fail cleanly and leave nothing behind.
      const create = await kw.admin("POST", "/agents", { name: "during", upstream: up.url });
      expect(create.status).toBe(503);
      expect(create.body.error.code).toBe("store_unavailable");
      expect((await fetch(`${kw.url}/readyz`)).status).toBe(503);
      expect((await fetch(`${kw.url}/healthz`)).status).toBe(200);
    } finally {
      await relay.restore();
    }

    // Back without a restart. New upstream tokens wait until the audit log has been writable for
    // a moment (it failed during the outage): allow a bounded few seconds for that.
    expect((await fetch(`${kw.url}/readyz`)).status).toBe(200);
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      const res = await call(cold);
      status = res.status;
      if (status !== 200) {
        expect((await readJson<ApiErrorBody>(res)).error.code).toMatch(/^(audit_unavailable|store_unavailable)$/);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(status).toBe(200);
    expect((await kw.admin("GET", "/agents/during")).status).toBe(404);
    expect((await kw.admin("POST", "/agents", { name: "during", upstream: up.url })).status).toBe(201);
    const verify = await kw.admin("GET", "/audit/verify");
    expect(verify.body.ok).toBe(true);
  });
});
