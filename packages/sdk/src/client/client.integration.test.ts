import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
// The real server, started in process the way its own tests start it (test-only import: the SDK
// itself does not depend on the server).
import type { TestServer } from "../../../server/test-support/server.js";
import { startTestServerAt } from "../../../server/test-support/server-at.js";
import { startRelay } from "../../../server/test-support/tcp-relay.js";
import { nextEvent } from "../../test-support/client/events.js";
import { KeywardError, UnknownCredentialError } from "../errors.js";
import { Keyward } from "./keyward.js";

const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
if (!pgUrl) console.warn("[sdk client.integration] KEYWARD_TEST_DATABASE_URL is not set: PostgreSQL run skipped");

/** `url` with libpq `options` selecting `schema`. */
function withSearchPath(url: string, schema: string): string {
  return `${url}${url.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}

const engines = [
  { name: "sqlite", skip: undefined },
  { name: "postgres", skip: pgUrl ? undefined : "KEYWARD_TEST_DATABASE_URL is not set" },
] as const;

describe.each(engines)("Keyward SDK against the real server ($name)", ({ name, skip }) => {
  let server: TestServer;
  let dataDir: string;
  let pgAdmin: pg.Client | undefined;
  let schema: string | undefined;
  const clients: Keyward[] = [];
  let agentKey: string;
  let agentKeyId: string;

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await server.admin(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };

  async function connect(token: string, url = server.url): Promise<Keyward> {
    const kw = await Keyward.connect({ url, token, backoffBaseMs: 20, backoffCapMs: 200 });
    clients.push(kw);
    return kw;
  }

  beforeAll(async () => {
    if (skip) return;
    dataDir = mkdtempSync(join(tmpdir(), "keyward-sdk-int-"));
    const env: Record<string, string> = {};
    if (name === "postgres") {
      schema = `kwsdk_${randomBytes(5).toString("hex")}`;
      pgAdmin = new pg.Client({ connectionString: pgUrl });
      await pgAdmin.connect();
      await pgAdmin.query(`CREATE SCHEMA ${schema}`);
      env.KEYWARD_DATABASE_URL = withSearchPath(pgUrl!, schema);
    }
    server = await startTestServerAt(dataDir, env, { credentials: { heartbeatMs: 200 } });
  });

  afterAll(async () => {
    if (skip) return;
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (pgAdmin) {
      await pgAdmin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      await pgAdmin.end();
    }
  });

  beforeEach(async () => {
    if (skip) return;
    const agent = `bot-${randomBytes(4).toString("hex")}`;
    await admin("POST", "/agents", { name: agent, upstream: "http://127.0.0.1:9" });
    await admin("PUT", `/credentials/${agent}_openai`, { value: "sk-one" });
    await admin("PUT", `/credentials/${agent}_hidden`, { value: "inject-only" });
    await admin("PUT", `/agents/${agent}/grants`, {
      credentials: [
        { name: `${agent}_openai`, mode: "read" },
        { name: `${agent}_hidden`, mode: "inject" },
      ],
    });
    const { key, secret } = await admin("POST", "/keys", { owner: `agent:${agent}`, scopes: [] });
    agentKey = secret;
    agentKeyId = key.id;
    current = agent;
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((kw) => kw.close()));
  });

  let current = "";
  const cred = (suffix: string) => `${current}_${suffix}`;

  it.skipIf(skip)("connects with the agent key, rotates, rolls back and deletes, all seen live", async () => {
    const kw = await connect(agentKey);
    expect(kw.get(cred("openai"))).toBe("sk-one");
    expect(() => kw.get(cred("hidden"))).toThrow(UnknownCredentialError); // inject mode: never revealed

    const rotated = nextEvent(kw, "change");
    await admin("PUT", `/credentials/${cred("openai")}`, { value: "sk-two" });
    expect(await rotated).toEqual({ name: cred("openai"), version: 2 });
    expect(kw.get(cred("openai"))).toBe("sk-two");
    expect(kw.resolve({ auth: `Bearer \${credentials.${cred("openai")}}` })).toEqual({ auth: "Bearer sk-two" });

    const rolledBack = nextEvent(kw, "change");
    await admin("POST", `/credentials/${cred("openai")}/rollback`, { version: 1 });
    expect(await rolledBack).toEqual({ name: cred("openai"), version: 3 });
    expect(kw.get(cred("openai"))).toBe("sk-one");

    const removed = nextEvent(kw, "removed");
    await admin("DELETE", `/credentials/${cred("openai")}`);
    expect(await removed).toEqual({ name: cred("openai") });
    expect(() => kw.get(cred("openai"))).toThrow(UnknownCredentialError);
  });

  it.skipIf(skip)("sees a grant given and taken away", async () => {
    const kw = await connect(agentKey);
    await admin("PUT", `/credentials/${cred("stripe")}`, { value: "sk_live_1" });
    const granted = nextEvent(kw, "change");
    await admin("PUT", `/agents/${current}/grants`, {
      credentials: [
        { name: cred("openai"), mode: "read" },
        { name: cred("stripe"), mode: "read" },
      ],
    });
    expect(await granted).toEqual({ name: cred("stripe"), version: 1 });
    expect(kw.get(cred("stripe"))).toBe("sk_live_1");

    const revoked = nextEvent(kw, "removed");
    await admin("PUT", `/agents/${current}/grants`, { credentials: [{ name: cred("openai"), mode: "read" }] });
    expect(await revoked).toEqual({ name: cred("stripe") });
    expect(() => kw.get(cred("stripe"))).toThrow(UnknownCredentialError);
    expect(kw.get(cred("openai"))).toBe("sk-one");
  });

  it.skipIf(skip)("connects with an access token whose sub is the agent", async () => {
    const res = await fetch(`${server.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: agentKey }),
    });
    expect(res.status).toBe(200);
    const { access_token } = (await res.json()) as { access_token: string };
    const kw = await connect(access_token);
    expect(kw.get(cred("openai"))).toBe("sk-one");
  });

  it.skipIf(skip)("fails clearly with the server's code for a revoked key and for a consumer's key", async () => {
    await admin("POST", `/keys/${agentKeyId}/revoke`);
    const revoked = await connect(agentKey).catch((e: unknown) => e);
    expect(revoked).toBeInstanceOf(KeywardError);
    expect(revoked).toMatchObject({ code: "key_revoked", status: 401 });

    const consumer = `c-${current}`;
    await admin("POST", "/consumers", { name: consumer });
    const { secret } = await admin("POST", "/keys", { owner: `consumer:${consumer}`, scopes: [] });
    const refused = await connect(secret).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 403 });
  });

  it.skipIf(skip)("keeps answering while Keyward is cut off, and catches up when it is back", async () => {
    const relay = await startRelay({ host: "127.0.0.1", port: Number(new URL(server.url).port) });
    try {
      const kw = await connect(agentKey, `http://127.0.0.1:${relay.port}`);
      const lost = nextEvent(kw, "error");
      await relay.cut();
      expect(await lost).toMatchObject({ code: "server_unreachable" });
      expect(kw.get(cred("openai"))).toBe("sk-one");

      await admin("PUT", `/credentials/${cred("openai")}`, { value: "sk-while-away" });
      const caughtUp = nextEvent(kw, "change");
      await relay.restore();
      expect(await caughtUp).toEqual({ name: cred("openai"), version: 2 });
      expect(kw.get(cred("openai"))).toBe("sk-while-away");
    } finally {
      await relay.close();
    }
  });
});
