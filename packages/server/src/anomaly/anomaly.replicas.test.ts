import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";
import { startUpstream } from "../../test-support/upstream.js";

/**
 * Auto-freeze on three replicas sharing one PostgreSQL (issue 13, done when): a key's denials
 * spread over the three cross the rule's threshold together; exactly one alert is raised and the
 * key is refused on every replica within 2 s of the crossing request.
 */

const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
const pgSkip = pgUrl ? undefined : "KEYWARD_TEST_DATABASE_URL is not set";
if (pgSkip) console.warn(`[anomaly.replicas] three PostgreSQL replicas skipped: ${pgSkip}`);

const FREEZE_BOUND_MS = 2000;
const THRESHOLD = 50;

describe.skipIf(pgSkip !== undefined)("auto-freeze on three replicas sharing one PostgreSQL", () => {
  const schema = `kwt_anomaly_${Math.random().toString(16).slice(2, 10)}`;
  const replicas: TestServer[] = [];
  const dirs: string[] = [];
  let admin: pg.Client;
  let up: Awaited<ReturnType<typeof startUpstream>>;

  beforeAll(async () => {
    up = await startUpstream();
    admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const configDir = mkdtempSync(join(tmpdir(), "keyward-anomaly-rep-"));
    dirs.push(configDir);
    const configFile = join(configDir, "keyward.yaml");
    writeFileSync(
      configFile,
      `anomalies:\n  rules:\n    - { name: probe-freeze, detector: denial_spike, threshold: ${THRESHOLD}, window_s: 60, action: freeze }\n`,
    );
    const url = `${pgUrl}${pgUrl?.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    for (let i = 0; i < 3; i++) {
      const d = mkdtempSync(join(tmpdir(), "keyward-anomaly-rep-"));
      dirs.push(d);
      replicas.push(await startTestServerAt(d, { KEYWARD_DATABASE_URL: url }, { configFile }));
    }
    const [first] = replicas as [TestServer];
    expect((await first.admin("POST", "/agents", { name: "echo", upstream: `${up.url}/base` })).status).toBe(201);
    expect((await first.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
  });
  afterAll(async () => {
    for (const r of replicas) await r.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin?.end();
    await up?.close();
  });

  const call = (r: TestServer, agent: string, secret: string) =>
    fetch(`${r.url}/agents/${agent}/echo`, { headers: { authorization: `Bearer ${secret}` } });

  it("300 denials spread over the three: one alert, and the key refused on all three within 2 s of the crossing request", async () => {
    const [first] = replicas as [TestServer];
    const issued = await first.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"] });
    const { secret } = issued.body as { secret: string };
    const id = issued.body.key.id as string;

    // Up to the crossing request: THRESHOLD denials, round robin over the replicas.
    for (let i = 0; i < THRESHOLD; i++) {
      expect((await call(replicas[i % 3] as TestServer, "billing", secret)).status).toBe(403);
    }
    const crossed = performance.now();
    const refusedAfter = await Promise.all(
      replicas.map(async (r) => {
        await expect
          // Polled where the key is refused (403) until refused as frozen (401): allowed polls
          // would be the key's traffic too and dilute the rule's denial ratio.
          .poll(async () => (await call(r, "billing", secret)).status, { timeout: 10_000, interval: 20 })
          .toBe(401);
        return performance.now() - crossed;
      }),
    );
    console.log(
      `[anomaly.replicas] refused on each replica after ${refusedAfter.map((ms) => ms.toFixed(0)).join(", ")} ms`,
    );
    for (const ms of refusedAfter) expect(ms).toBeLessThanOrEqual(FREEZE_BOUND_MS);

    // The rest of the 300: still one incident, one alert, seen alike from every replica.
    await Promise.all(
      replicas.map(async (r, i) => {
        for (let n = i; n < 300 - THRESHOLD; n += 3) expect((await call(r, "billing", secret)).status).toBe(401);
      }),
    );
    for (const r of replicas) {
      const alerts = await r.admin("GET", `/alerts?key_id=${id}`);
      expect(alerts.body.items).toHaveLength(1);
      expect(alerts.body.items[0]).toMatchObject({ rule: "probe-freeze", key_id: id });
      const res = await call(r, "echo", secret);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("key_frozen");
    }
    const freezes = await first.admin("GET", `/audit?action=key.freeze&principal=${id}`);
    expect(freezes.body.events).toHaveLength(1);
    expect(freezes.body.events[0].actor).toBe("anomaly:probe-freeze");
  });
});
