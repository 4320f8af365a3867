import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestServer } from "../../test-support/server.js";
import { startTestServerAt } from "../../test-support/server-at.js";
import { openSse, type SseClient } from "../../test-support/sse-client.js";
import { type CredentialsBody, readJson } from "../../test-support/wire.js";

/**
 * Two replicas on one PostgreSQL database, started the way a user starts them: a change made
 * through one reaches event streams held by the other, and a cursor from one is exact on the other.
 */

const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
const skip = pgUrl ? undefined : "KEYWARD_TEST_DATABASE_URL is not set";
if (skip) console.warn(`[credentials replicas] skipped: ${skip}`);

const replicas: TestServer[] = [];
const dirs: string[] = [];
const streams: SseClient[] = [];
let agentKey = "";
let schema: string | undefined;

beforeAll(async () => {
  if (skip) return;
  schema = `kwr_${randomBytes(5).toString("hex")}`;
  const sep = pgUrl!.includes("?") ? "&" : "?";
  const env = {
    KEYWARD_DATABASE_URL: `${pgUrl}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    KEYWARD_MASTER_KEY: randomBytes(32).toString("base64"),
  };
  // The schema must exist before the first replica migrates into it.
  const pg = await import("pg");
  const client = new pg.default.Client({ connectionString: pgUrl });
  await client.connect();
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  for (let i = 0; i < 2; i++) {
    const dir = mkdtempSync(join(tmpdir(), "keyward-cred-replica-"));
    dirs.push(dir);
    replicas.push(await startTestServerAt(dir, env));
  }
  const [a] = replicas as [TestServer];
  await a.admin("POST", "/agents", { name: "bot", upstream: "http://127.0.0.1:9" });
  agentKey = (await a.admin("POST", "/keys", { owner: "agent:bot", scopes: [] })).body.secret;
  await a.admin("PUT", "/credentials/shared", { value: "v1" });
  await a.admin("PUT", "/agents/bot/grants", { credentials: [{ name: "shared", mode: "read" }] });
});

afterAll(async () => {
  for (const s of streams) s.close();
  for (const r of replicas) await r.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (schema && pgUrl) {
    const pg = await import("pg");
    const client = new pg.default.Client({ connectionString: pgUrl });
    await client.connect();
    await client.query(`DROP SCHEMA ${schema} CASCADE`);
    await client.end();
  }
});

const read = (r: TestServer, query = "") =>
  fetch(`${r.url}/v1/credentials${query}`, { headers: { authorization: `Bearer ${agentKey}` } });

describe.skipIf(skip)("credentials across replicas", () => {
  it("delivers a change made on one replica to event streams on the other", async () => {
    const [a, b] = replicas as [TestServer, TestServer];
    const onB = await openSse(`${b.url}/v1/credentials/events`, { authorization: `Bearer ${agentKey}` });
    streams.push(onB);
    await onB.nextComment();
    const before = await readJson<CredentialsBody>(await read(b)); // B caches its view of the agent
    expect(before.credentials.shared?.value).toBe("v1");

    expect((await a.admin("PUT", "/credentials/shared", { value: "v2" })).status).toBe(200);
    const event = await onB.next();
    expect(JSON.parse(event.data)).toEqual({ name: "shared", version: 2 });
    // B's cache was dropped too: it answers the new value.
    expect((await readJson<CredentialsBody>(await read(b))).credentials.shared).toEqual({ value: "v2", version: 2 });
  });

  it("answers a cursor from one replica exactly on the other", async () => {
    const [a, b] = replicas as [TestServer, TestServer];
    const fromA = await readJson<CredentialsBody>(await read(a));
    const onA = await openSse(`${a.url}/v1/credentials/events`, { authorization: `Bearer ${agentKey}` });
    streams.push(onA);
    await onA.nextComment();
    await b.admin("PUT", "/credentials/shared", { value: "v3" });
    await b.admin("PUT", "/credentials/other", { value: "o1" });
    await b.admin("PUT", "/agents/bot/grants", {
      credentials: [{ name: "other", mode: "read" }],
    });
    // A has applied the last change once its stream announces it (B answered once it told A).
    for (;;) {
      const e = await onA.next();
      if (e.event === "changed" && JSON.parse(e.data).name === "other") break;
    }
    const delta = await readJson<CredentialsBody>(await read(a, `?since=${fromA.cursor}`));
    expect(delta.credentials).toEqual({ other: { value: "o1", version: 1 } });
    expect(delta.removed).toEqual(["shared"]);
    const sameOnB = await readJson<CredentialsBody>(await read(b, `?since=${fromA.cursor}`));
    expect(sameOnB).toEqual(delta);
  });
});
