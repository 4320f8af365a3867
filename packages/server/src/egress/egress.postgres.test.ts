import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentWithKey, egressCall, grant, putCredential } from "../../test-support/egress/agents.js";
import { startEgressUpstream } from "../../test-support/egress/upstreams.js";
import type { TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";

/**
 * Egress on PostgreSQL with two replicas sharing the store: a credential changed through one is
 * injected (and redacted) by the other on its next requests, and a grant removed through one is
 * refused by the other. The replica learns through the change feed (PostgreSQL NOTIFY here), so
 * the test asks until the change has arrived, within a bound.
 */

const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
const pgSkip = pgUrl ? undefined : "KEYWARD_TEST_DATABASE_URL is not set";
if (pgSkip) console.warn(`[egress.postgres] PostgreSQL tests skipped: ${pgSkip}`);

describe.skipIf(pgSkip)("egress on PostgreSQL, two replicas", () => {
  const schema = `kweg_${randomBytes(5).toString("hex")}`;
  const dirs: string[] = [];
  let admin: pg.Client;
  let a: TestServer;
  let b: TestServer;
  let up: Awaited<ReturnType<typeof startEgressUpstream>>;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const sep = (pgUrl as string).includes("?") ? "&" : "?";
    const url = `${pgUrl}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    up = await startEgressUpstream();
    const start = async () => {
      const dir = mkdtempSync(join(tmpdir(), "keyward-egress-pg-"));
      dirs.push(dir);
      return startTestServerAt(dir, { KEYWARD_DATABASE_URL: url });
    };
    a = await start();
    b = await start();
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await up?.close();
    await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await admin?.end();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** Calls egress on `kw` until `done` holds for the answer (a bounded number of times). */
  async function until(kw: TestServer, key: string, path: string, done: (res: Response) => boolean) {
    for (let i = 0; i < 500; i++) {
      const res = await egressCall(kw, key, path);
      await res.arrayBuffer();
      if (done(res)) return res;
    }
    throw new Error(`${path} never reached the expected state`);
  }

  it("a change made through one replica is used by the other", async () => {
    const key = await agentWithKey(a, "bot");
    await putCredential(a, "svc", "first-value-0123456789", { base_url: up.url });
    await grant(a, "bot", [{ name: "svc", mode: "inject" }]);

    const first = await egressCall(b, key, "svc/x");
    expect(first.status).toBe(200);
    await first.text();
    expect(up.seen.at(-1)!.headers.authorization).toBe("Bearer first-value-0123456789");

    await putCredential(a, "svc", "second-value-9876543210");
    await until(b, key, "svc/x", () => up.seen.at(-1)!.headers.authorization === "Bearer second-value-9876543210");
    const leak = await egressCall(b, key, "svc/leak");
    const body = await leak.text();
    expect(body).not.toContain("second-value-9876543210");
    expect(body).toContain("raw=[redacted]");

    await grant(a, "bot", []);
    const refused = await until(b, key, "svc/x", (res) => res.status === 403);
    expect(refused.status).toBe(403);
  });
});
