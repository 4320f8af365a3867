import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeTokenEndpoint, startFakeTokenEndpoint } from "../../test-support/fake-token-endpoint.js";
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from "../../test-support/server.js";
import { openSse } from "../../test-support/sse-client.js";
import { type CredentialsBody, readJson } from "../../test-support/wire.js";
import { createLogger } from "../ops/logger.js";

/**
 * Who can see a credential's value: only an agent granted it in read mode, through its own key or
 * token. Never an admin response, an audit record, a log line, a metric or an error message.
 */

const SECRETS = {
  shared: "SECRET-shared-6f1d2a",
  injectOnly: "SECRET-inject-9c3b7e",
  other: "SECRET-other-4a8e0f",
  client: "SECRET-client-secret-7d2c",
  refused: "SECRET-refused-1b5e",
};

let kw: TestServer;
let tokens: FakeTokenEndpoint;
let logs = "";
const keys: Record<string, string> = {};

const get = (key: string, path = "/v1/credentials") =>
  fetch(`${kw.url}${path}`, { headers: { authorization: `Bearer ${key}` } });

beforeAll(async () => {
  const logger = createLogger({
    level: "debug",
    destination: {
      write(line: string) {
        logs += line;
      },
    },
  });
  kw = await startTestServer({ KEYWARD_ACCESS_LOG: "1" }, { logger, credentials: { heartbeatMs: 50 } });
  tokens = await startFakeTokenEndpoint({ clientId: "app", clientSecret: SECRETS.client });
  for (const agent of ["alice", "bob"]) {
    await kw.admin("POST", "/agents", { name: agent, upstream: "http://127.0.0.1:9" });
    keys[agent] = (await kw.admin("POST", "/keys", { owner: `agent:${agent}`, scopes: [] })).body.secret;
  }
  await kw.admin("POST", "/consumers", { name: "shop" });
  keys.consumer = (await kw.admin("POST", "/keys", { owner: "consumer:shop", scopes: ["agent:*"] })).body.secret;
  keys.user = (await kw.admin("POST", "/keys", { owner: "user:u-1", scopes: [] })).body.secret;
  await kw.admin("PUT", "/credentials/shared", { value: SECRETS.shared });
  await kw.admin("PUT", "/credentials/inject-only", {
    value: SECRETS.injectOnly,
    egress: { base_url: "https://api.example.com" },
  });
  await kw.admin("PUT", "/credentials/other", { value: SECRETS.other });
  await kw.admin("PUT", "/credentials/provider", {
    type: "oauth2_client_credentials",
    token_url: tokens.url,
    client_id: "app",
    client_secret: SECRETS.client,
  });
  await kw.admin("PUT", "/agents/alice/grants", {
    credentials: [
      { name: "shared", mode: "read" },
      { name: "inject-only", mode: "inject" },
    ],
  });
  await kw.admin("PUT", "/agents/bob/grants", { credentials: [{ name: "other", mode: "read" }] });
});
afterAll(async () => {
  await kw?.close();
  await tokens?.close();
});

describe("reading values", () => {
  it("gives an agent its read grants only: not inject grants, not another agent's", async () => {
    const alice = await readJson<CredentialsBody>(await get(keys.alice!));
    expect(Object.keys(alice.credentials)).toEqual(["shared"]);
    const text = JSON.stringify(alice);
    expect(text).not.toContain(SECRETS.injectOnly);
    expect(text).not.toContain(SECRETS.other);
    const bob = await readJson<CredentialsBody>(await get(keys.bob!));
    expect(Object.keys(bob.credentials)).toEqual(["other"]);
  });

  it("refuses consumers and users, whatever their scopes", async () => {
    for (const who of ["consumer", "user"]) {
      for (const path of ["/v1/credentials", "/v1/credentials/events"]) {
        const res = await get(keys[who]!, path);
        expect(res.status).toBe(403);
        const text = await res.text();
        expect(JSON.parse(text).error.code).toBe("forbidden");
        for (const s of Object.values(SECRETS)) expect(text).not.toContain(s);
      }
    }
  });

  it("never streams another agent's or an inject-only credential's changes", async () => {
    const s = await openSse(`${kw.url}/v1/credentials/events`, { authorization: `Bearer ${keys.alice}` });
    try {
      await s.nextComment();
      await kw.admin("PUT", "/credentials/other", { value: `${SECRETS.other}-2` });
      await kw.admin("PUT", "/credentials/inject-only", { value: `${SECRETS.injectOnly}-2` });
      await kw.admin("PUT", "/credentials/shared", { value: `${SECRETS.shared}-2` });
      const first = await s.next();
      expect(JSON.parse(first.data)).toEqual({ name: "shared", version: 2 });
      expect(s.raw()).not.toMatch(/other|inject-only|SECRET/);
    } finally {
      s.close();
    }
  });
});

describe("where values must never appear", () => {
  it("is absent from admin responses, error messages, the audit log, metrics and logs", async () => {
    // Some failures on purpose: refusals must not echo what they refused.
    const refused = await fetch(`${kw.url}/admin/v1/credentials/bad%20name`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ value: SECRETS.refused }),
    });
    expect(refused.status).toBe(400);
    const tooBig = await kw.admin("PUT", "/credentials/big", { value: SECRETS.refused.repeat(5000) });
    expect(tooBig.status).toBe(413);
    await get(keys.alice!);

    const seen = [
      await refused.text(),
      JSON.stringify(tooBig.body),
      JSON.stringify((await kw.admin("GET", "/credentials?limit=1000")).body),
      ...(await Promise.all(
        ["shared", "inject-only", "other", "provider"].map(async (n) =>
          JSON.stringify((await kw.admin("GET", `/credentials/${n}`)).body),
        ),
      )),
      JSON.stringify((await kw.admin("GET", "/audit?limit=1000")).body),
      await (await fetch(`${kw.url}/metrics`)).text(),
      logs,
    ];
    expect(logs).toContain("/v1/credentials"); // the logs were captured, so their silence means something
    for (const text of seen) {
      for (const s of Object.values(SECRETS)) expect(text).not.toContain(s);
      expect(text).not.toContain("tok-1");
    }
    // The reads themselves are in the audit log, by name and version.
    const reads = await kw.admin("GET", "/audit?action=credential.read&principal=agent:alice");
    expect(reads.body.events.length).toBeGreaterThan(0);
    expect(reads.body.events[0].details.read).toBe("shared@2");
  });
});
