import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";

/**
 * Canaries for the token endpoints: every key, access token and refresh token issued here is
 * searched for in the debug logs, the audit log, /metrics, the data dir and every response except
 * the one that issued it.
 */
let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;
const logs: string[] = [];
const responses: Array<{ where: string; text: string; allowed: string[] }> = [];
const secrets: Record<string, string> = {};

async function call(where: string, path: string, init: RequestInit, allowed: string[] = []) {
  const res = await fetch(`${kw.url}${path}`, init);
  const text = await res.text();
  responses.push({ where, text: `${res.status}\n${[...res.headers].join("\n")}\n${text}`, allowed });
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
const form = (params: Record<string, string>, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(params).toString(),
});
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

beforeAll(async () => {
  up = await startUpstream();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  kw = await startTestServer({ KEYWARD_LOG_LEVEL: "debug" }, { logger: pino({ level: "debug" }, sink) });
  await kw.admin("POST", "/agents", { name: "echo", upstream: up.url });
  await kw.admin("POST", "/consumers", { name: "acme" });
  const k = await kw.admin("POST", "/keys", { owner: "consumer:acme", scopes: ["agent:echo"] });
  const a = await kw.admin("POST", "/keys", { owner: "agent:echo", scopes: [] });
  secrets.key = k.body.secret;
  secrets.agentKey = a.body.secret;
  const keyId = k.body.key.id as string;

  const t1 = await call("auth token", "/v1/auth/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ api_key: secrets.key }),
  });
  secrets.access1 = t1.body.access_token;
  secrets.refresh1 = t1.body.refresh_token;
  responses[responses.length - 1]!.allowed.push(secrets.access1 as string, secrets.refresh1 as string);

  const t2 = await call(
    "refresh",
    "/oauth/token",
    form({ grant_type: "refresh_token", refresh_token: secrets.refresh1 as string }),
  );
  secrets.access2 = t2.body.access_token;
  secrets.refresh2 = t2.body.refresh_token;
  responses[responses.length - 1]!.allowed.push(secrets.access2 as string, secrets.refresh2 as string);

  // Refusals that carry secrets in the request: none may come back, nor reach logs or audit.
  await call("reuse", "/oauth/token", form({ grant_type: "refresh_token", refresh_token: secrets.refresh1 as string }));
  await call(
    "bad client",
    "/oauth/token",
    form({ grant_type: "client_credentials" }, { authorization: basic(keyId, `${secrets.key}x`) }),
  );
  await call(
    "wrong id",
    "/oauth/token",
    form({ grant_type: "client_credentials", client_id: "key_nope", client_secret: secrets.key as string }),
  );
  await call(
    "garbage grant",
    "/oauth/token",
    form({ grant_type: secrets.key as string, client_secret: secrets.refresh2 as string }),
  );
  await call(
    "exchange",
    "/oauth/token",
    form({
      grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
      subject_token: secrets.access2 as string,
      subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
      actor_token: secrets.agentKey as string,
      actor_token_type: "urn:ietf:params:oauth:token-type:access_token",
      audience: "echo",
    }),
  );
  await call(
    "introspect",
    "/oauth/introspect",
    form({ token: secrets.access2 as string }, { authorization: `Bearer ${secrets.agentKey}` }),
  );
  await call(
    "introspect refresh",
    "/oauth/introspect",
    form({ token: secrets.refresh2 as string }, { authorization: `Bearer ${secrets.agentKey}` }),
  );
  await call("gateway", "/agents/echo/x", { headers: { authorization: `Bearer ${secrets.access2}` } });
  await call(
    "revoke",
    "/oauth/revoke",
    form({ token: secrets.access2 as string }, { authorization: `Bearer ${secrets.access2}` }),
  );
  await call("gateway revoked", "/agents/echo/x", { headers: { authorization: `Bearer ${secrets.access2}` } });
  await call("gateway garbage", "/agents/echo/x", { headers: { authorization: `Bearer ${secrets.refresh2}` } });
  await call("verify", "/v1/verify", {
    headers: { authorization: `Bearer ${secrets.access1}`, "x-original-uri": "/agents/echo/x" },
  });
});
afterAll(async () => {
  await kw?.close();
  await up?.close();
});

describe("token secrets never leak", () => {
  const check = (where: string, text: string, allowed: string[] = []) => {
    for (const [name, value] of Object.entries(secrets)) {
      if (allowed.includes(value)) continue;
      expect(text.includes(value), `${name} found in ${where}`).toBe(false);
      // The random part of an opaque secret, past its public prefix.
      if (!value.startsWith("ey"))
        expect(text.includes(value.slice(12)), `${name} (tail) found in ${where}`).toBe(false);
    }
  };

  it("is not in any response but the one that issued it", () => {
    expect(responses.length).toBeGreaterThan(10);
    for (const r of responses) check(r.where, r.text, r.allowed);
  });

  it("is not in the debug logs, the audit log or /metrics", async () => {
    expect(logs.length).toBeGreaterThan(0);
    check("logs", logs.join("\n"));
    const audit = await kw.admin("GET", "/audit?limit=500");
    expect(audit.body.events.length).toBeGreaterThan(5);
    check("audit", JSON.stringify(audit.body));
    check("metrics", await (await fetch(`${kw.url}/metrics`)).text());
  });

  it("is not in what the upstream received, nor in the data dir", async () => {
    // Read while the server runs: the SQLite file and its WAL are both on disk.
    check("upstream", JSON.stringify(up.seen));
    for (const file of filesUnder(kw.dataDir)) check(file, readFileSync(file).toString("latin1"));
  });
});
