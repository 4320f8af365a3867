import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, createAdmin, signIn } from "../../test-support/admin-identities.js";
import type { TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";

/**
 * Two replicas on one PostgreSQL database, started the way a user starts them: an admin token
 * revoked on one is refused by the other at its very next request, Bearer or console session, and
 * a session made on one works on the other.
 */
const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
const skip = pgUrl ? undefined : "KEYWARD_TEST_DATABASE_URL is not set";
if (skip) console.warn(`[admin tokens replicas] skipped: ${skip}`);

const replicas: TestServer[] = [];
const dirs: string[] = [];
let schema: string | undefined;

async function sql(text: string): Promise<void> {
  const pg = await import("pg");
  const client = new pg.default.Client({ connectionString: pgUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  if (skip) return;
  schema = `kwa_${randomBytes(5).toString("hex")}`;
  const sep = pgUrl?.includes("?") ? "&" : "?";
  const env = {
    KEYWARD_DATABASE_URL: `${pgUrl}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    KEYWARD_MASTER_KEY: randomBytes(32).toString("base64"),
  };
  await sql(`CREATE SCHEMA ${schema}`); // before the first replica migrates into it
  for (let i = 0; i < 2; i++) {
    const dir = mkdtempSync(join(tmpdir(), "keyward-admin-replica-"));
    dirs.push(dir);
    replicas.push(await startTestServerAt(dir, env));
  }
});

afterAll(async () => {
  for (const r of replicas) await r.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (schema) await sql(`DROP SCHEMA ${schema} CASCADE`);
});

describe("admin tokens across replicas", () => {
  it.skipIf(skip)("a token revoked on replica A is refused by replica B at its next request", async () => {
    const [a, b] = replicas as [TestServer, TestServer];
    const operator = await createAdmin(a, "hands", "operator");
    const session = await signIn(a.url, operator.secret);
    const headers = { cookie: session.cookie };
    // Known to B: it authenticates there (Bearer and the session made on A).
    expect((await call(b.url, "GET", "/admin/v1/agents", { bearer: operator.secret })).status).toBe(200);
    expect((await call(b.url, "GET", "/admin/v1/agents", { headers })).status).toBe(200);

    expect((await a.admin("POST", `/admin-tokens/${operator.id}/revoke`)).status).toBe(200);
    const bearer = await call(b.url, "GET", "/admin/v1/agents", { bearer: operator.secret });
    expect(bearer.status).toBe(401);
    expect(bearer.body.error.code).toBe("unauthorized");
    expect((await call(b.url, "GET", "/admin/v1/agents", { headers })).status).toBe(401);
  });

  it.skipIf(skip)("a session signed out on B is over on A", async () => {
    const [a, b] = replicas as [TestServer, TestServer];
    const s = await signIn(b.url, b.adminToken);
    const out = await call(b.url, "DELETE", "/admin/v1/sessions/current", {
      headers: { cookie: s.cookie, "x-csrf-token": s.csrf },
    });
    expect(out.status).toBe(204);
    expect((await call(a.url, "GET", "/admin/v1/agents", { headers: { cookie: s.cookie } })).status).toBe(401);
  });
});
