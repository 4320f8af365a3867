import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";
import { openSse, type SseClient } from "../../test-support/sse-client.js";
import { startUpstream } from "../../test-support/upstream.js";

/**
 * Two replicas on one PostgreSQL database: a user credential changed through one is served new by
 * the other, which had the old value cached (the test shows that it had: it answers from memory
 * after the row is deleted behind Keyward's back, until A's change reaches it).
 */

const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
const skip = pgUrl ? undefined : "KEYWARD_TEST_DATABASE_URL is not set";
if (skip) console.warn(`[users replicas] skipped: ${skip}`);

const replicas: TestServer[] = [];
const dirs: string[] = [];
let stream: SseClient | undefined;
let up: Awaited<ReturnType<typeof startUpstream>> | undefined;
let schema: string | undefined;

async function withClient(fn: (c: import("pg").Client) => Promise<unknown>): Promise<void> {
  const pg = await import("pg");
  const client = new pg.default.Client({ connectionString: pgUrl });
  await client.connect();
  try {
    await fn(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  if (skip) return;
  up = await startUpstream();
  schema = `kwu_${randomBytes(5).toString("hex")}`;
  const sep = pgUrl!.includes("?") ? "&" : "?";
  const env = {
    KEYWARD_DATABASE_URL: `${pgUrl}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    KEYWARD_MASTER_KEY: randomBytes(32).toString("base64"),
  };
  await withClient((c) => c.query(`CREATE SCHEMA ${schema}`));
  for (let i = 0; i < 2; i++) {
    const dir = mkdtempSync(join(tmpdir(), "keyward-users-replica-"));
    dirs.push(dir);
    replicas.push(await startTestServerAt(dir, env));
  }
});

afterAll(async () => {
  stream?.close();
  for (const r of replicas) await r.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await up?.close();
  if (schema && pgUrl) await withClient((c) => c.query(`DROP SCHEMA ${schema} CASCADE`));
});

describe.skipIf(skip)("user credentials across replicas", () => {
  it("drops the other replica's cached value when one replica writes", async () => {
    const [a, b] = replicas as [TestServer, TestServer];
    await a.admin("POST", "/agents", { name: "tools", upstream: up!.url });
    const agentKey = (await a.admin("POST", "/keys", { owner: "agent:tools", scopes: [] })).body.secret as string;
    await a.admin("PUT", "/credentials/marker", { value: "m1" });
    await a.admin("PUT", "/agents/tools/grants", {
      credentials: [{ name: "marker", mode: "read" }],
      user_credentials: ["cloud_ak"],
    });
    const userKey = (await a.admin("POST", "/keys", { owner: "user:alice", scopes: ["agent:tools"] })).body.secret;
    await a.admin("PUT", "/users/alice/credentials/cloud_ak", { value: "AK-1" });

    const gw = await fetch(`${b.url}/agents/tools/x`, { headers: { authorization: `Bearer ${userKey}` } });
    expect(gw.status).toBe(200);
    const jwt = (JSON.parse(await gw.text()).headers.authorization as string).slice("Bearer ".length);
    const fetchOnB = async () =>
      (
        await fetch(`${b.url}/v1/tools/credentials`, {
          method: "POST",
          headers: { authorization: `Bearer ${agentKey}`, "content-type": "application/json" },
          body: JSON.stringify({ user_token: jwt, names: ["cloud_ak"] }),
        })
      ).json();
    expect(await fetchOnB()).toEqual({ credentials: { cloud_ak: "AK-1" } }); // B caches alice's values
    // Proof that it does: the row deleted behind Keyward's back (no change announced), B still answers.
    await withClient((c) => c.query(`DELETE FROM ${schema}.user_credentials WHERE user_id = 'alice'`));
    expect(await fetchOnB()).toEqual({ credentials: { cloud_ak: "AK-1" } });

    stream = await openSse(`${b.url}/v1/credentials/events`, { authorization: `Bearer ${agentKey}` });
    await stream.nextComment();
    expect((await a.admin("PUT", "/users/alice/credentials/cloud_ak", { value: "AK-2" })).status).toBe(201);
    // A change A makes after it: once B announces that one, it has applied the one before.
    expect((await a.admin("PUT", "/credentials/marker", { value: "m2" })).status).toBe(200);
    for (;;) {
      const e = await stream.next();
      if (e.event === "changed" && JSON.parse(e.data).name === "marker") break;
    }
    expect(await fetchOnB()).toEqual({ credentials: { cloud_ak: "AK-2" } });
  });
});
