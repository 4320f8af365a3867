import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startFakeTokenEndpoint } from "../../test-support/fake-token-endpoint.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { openSse, type SseClient } from "../../test-support/sse-client.js";
import { type ApiErrorBody, type CredentialsBody, readJson } from "../../test-support/wire.js";

/**
 * Outbound credentials end to end, as an operator and an agent see them (SPEC §3, §6): the admin
 * API, GET /v1/credentials with ETag, 304 and `since`, and the event stream with replay.
 */

let kw: TestServer;
let agentKey: string;
let n = 0;
const streams: SseClient[] = [];

beforeAll(async () => {
  // One key holds hundreds of streams below ("fan-out"): raise the per-key and per-address caps.
  kw = await startTestServer(
    {},
    { credentials: { heartbeatMs: 50, streams: { perKey: 1000, perAddress: 1000, total: 10_000 } } },
  );
});
afterAll(async () => {
  for (const s of streams) s.close();
  await kw?.close();
});

/** A fresh agent with its own key, so tests do not see each other's grants. */
async function newAgent(): Promise<{ name: string; key: string }> {
  const name = `bot-${++n}`;
  expect((await kw.admin("POST", "/agents", { name, upstream: "http://127.0.0.1:9" })).status).toBe(201);
  const key = await kw.admin("POST", "/keys", { owner: `agent:${name}`, scopes: [] });
  expect(key.status).toBe(201);
  return { name, key: key.body.secret as string };
}

const put = async (name: string, body: unknown, status?: number) => {
  const r = await kw.admin("PUT", `/credentials/${name}`, body);
  if (status !== undefined) expect(r.status, JSON.stringify(r.body)).toBe(status);
  return r;
};
const grant = async (agent: string, read: string[], inject: string[] = []) => {
  const r = await kw.admin("PUT", `/agents/${agent}/grants`, {
    credentials: [...read.map((name) => ({ name, mode: "read" })), ...inject.map((name) => ({ name, mode: "inject" }))],
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
};
const read = (key: string, query = "", headers: Record<string, string> = {}) =>
  fetch(`${kw.url}/v1/credentials${query}`, { headers: { authorization: `Bearer ${key}`, ...headers } });
const events = async (key: string, headers: Record<string, string> = {}) => {
  const s = await openSse(`${kw.url}/v1/credentials/events`, { authorization: `Bearer ${key}`, ...headers });
  streams.push(s);
  return s;
};
const data = (e: { data: string }) => JSON.parse(e.data) as { name: string; version?: number };

describe("admin API", () => {
  it("creates (201), updates (200), lists, shows versions, rolls back and deletes, never echoing a value", async () => {
    const created = await put(
      "admin-openai",
      { value: "sk-created", egress: { base_url: "https://api.example.com/v1" } },
      201,
    );
    expect(created.body).toMatchObject({
      name: "admin-openai",
      type: "static",
      version: 1,
      egress: { base_url: "https://api.example.com/v1", header: "Authorization", format: "Bearer {value}" },
      status: "ok",
    });
    const updated = await put("admin-openai", { value: "sk-updated" }, 200);
    expect(updated.body.version).toBe(2);
    expect(updated.body.egress.base_url).toBe("https://api.example.com/v1"); // kept when omitted
    const custom = await put(
      "admin-openai",
      { value: "sk-third", egress: { base_url: "https://api.example.com", header: "X-Api-Key" } },
      200,
    );
    expect(custom.body.egress).toEqual({
      base_url: "https://api.example.com/",
      header: "X-Api-Key",
      format: "{value}",
    });

    const one = await kw.admin("GET", "/credentials/admin-openai");
    expect(one.body.versions.map((v: { version: number }) => v.version)).toEqual([3, 2, 1]);
    const list = await kw.admin("GET", "/credentials?limit=1000");
    expect(list.body.items.map((c: { name: string }) => c.name)).toContain("admin-openai");

    const rolled = await kw.admin("POST", "/credentials/admin-openai/rollback", { version: 1 });
    expect(rolled.status).toBe(200);
    expect(rolled.body.version).toBe(4);
    expect(rolled.body.versions[0]).toMatchObject({ version: 4, source: "rollback", rolled_back_from: 1 });

    const noEgress = await put("admin-openai", { value: "sk-fourth", egress: null }, 200);
    expect(noEgress.body.egress).toBeNull();

    for (const r of [created, updated, custom, one, list, rolled, noEgress]) {
      expect(JSON.stringify(r.body)).not.toMatch(/sk-(created|updated|third|fourth)/);
    }
    expect((await kw.admin("DELETE", "/credentials/admin-openai")).status).toBe(204);
    expect((await kw.admin("GET", "/credentials/admin-openai")).status).toBe(404);
    expect((await kw.admin("DELETE", "/credentials/admin-openai")).status).toBe(404);
    const audit = await kw.admin("GET", "/audit?principal=admin:adm_bootstrap&limit=100");
    const actions = audit.body.events.map((e: { action: string }) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining(["credential.create", "credential.update", "credential.rollback", "credential.delete"]),
    );
    expect(JSON.stringify(audit.body)).not.toMatch(/sk-(created|updated|third|fourth)/);
  });

  it("shows and replaces an agent's grants", async () => {
    const bot = await newAgent();
    await put("grant-a", { value: "a" });
    await put("grant-b", { value: "b" });
    const set = await kw.admin("PUT", `/agents/${bot.name}/grants`, {
      credentials: [
        { name: "grant-a", mode: "read" },
        { name: "grant-b", mode: "inject" },
      ],
      user_credentials: ["github"],
      may_call: [bot.name],
    });
    expect(set.status).toBe(200);
    expect((await kw.admin("GET", `/agents/${bot.name}/grants`)).body).toEqual({
      agent: bot.name,
      credentials: [
        { name: "grant-a", mode: "read" },
        { name: "grant-b", mode: "inject" },
      ],
      user_credentials: ["github"],
      may_call: [bot.name],
    });
    expect((await kw.admin("GET", "/agents/nobody/grants")).status).toBe(404);
  });
});

describe("GET /v1/credentials", () => {
  let bot: { name: string; key: string };
  beforeEach(async () => {
    bot = await newAgent();
    agentKey = bot.key;
  });

  it("answers every read-granted value in one response, with a strong ETag; If-None-Match gives 304", async () => {
    await put(`${bot.name}-one`, { value: "value-one" });
    await put(`${bot.name}-two`, { value: "ünïcødé 🔑\n" });
    await put(`${bot.name}-hidden`, { value: "value-hidden" });
    await grant(bot.name, [`${bot.name}-one`, `${bot.name}-two`], [`${bot.name}-hidden`]);

    const res = await read(agentKey);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const etag = res.headers.get("etag")!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const body = await readJson<CredentialsBody>(res);
    expect(body).toEqual({
      credentials: {
        [`${bot.name}-one`]: { value: "value-one", version: 1 },
        [`${bot.name}-two`]: { value: "ünïcødé 🔑\n", version: 1 },
      },
      removed: [],
      cursor: expect.stringMatching(/^\d+$/),
    });

    const same = await read(agentKey, "", { "if-none-match": etag });
    expect(same.status).toBe(304);
    expect(same.headers.get("etag")).toBe(etag);
    expect(await same.text()).toBe("");

    await put(`${bot.name}-one`, { value: "value-one-b" });
    const changed = await read(agentKey, "", { "if-none-match": etag });
    expect(changed.status).toBe(200);
    expect(changed.headers.get("etag")).not.toBe(etag);
    expect((await readJson<CredentialsBody>(changed)).credentials[`${bot.name}-one`]).toEqual({
      value: "value-one-b",
      version: 2,
    });
  });

  it("answers ?since= with only what changed, and names removed or ungranted in `removed`", async () => {
    const [a, b, c] = ["a", "b", "c"].map((x) => `${bot.name}-${x}`) as [string, string, string];
    for (const name of [a, b, c]) await put(name, { value: `v-${name}` });
    await grant(bot.name, [a, b, c]);
    const first = await readJson<CredentialsBody>(await read(agentKey));

    const quiet = await read(agentKey, `?since=${first.cursor}`);
    const quietBody = await readJson<CredentialsBody>(quiet);
    expect(quietBody).toEqual({ credentials: {}, removed: [], cursor: first.cursor });
    // Polling with the delta's ETag is a 304 until something changes.
    expect(
      (await read(agentKey, `?since=${first.cursor}`, { "if-none-match": quiet.headers.get("etag")! })).status,
    ).toBe(304);

    await put(a, { value: "v-a-2" });
    await kw.admin("DELETE", `/credentials/${b}`);
    await grant(bot.name, [a]);
    const delta = await readJson<CredentialsBody>(await read(agentKey, `?since=${first.cursor}`));
    expect(delta.credentials).toEqual({ [a]: { value: "v-a-2", version: 2 } });
    expect(delta.removed.sort()).toEqual([b, c].sort());
    expect(Number(delta.cursor)).toBeGreaterThan(Number(first.cursor));
    expect(await readJson<CredentialsBody>(await read(agentKey, `?since=${delta.cursor}`))).toEqual({
      credentials: {},
      removed: [],
      cursor: delta.cursor,
    });
  });

  it("audits each read with names and versions, never values; a 304 reads nothing", async () => {
    await put(`${bot.name}-audited`, { value: "audited-secret-value" });
    await grant(bot.name, [`${bot.name}-audited`]);
    const res = await read(agentKey);
    const etag = res.headers.get("etag")!;
    await res.text();
    expect((await read(agentKey, "", { "if-none-match": etag })).status).toBe(304);
    const audit = await kw.admin("GET", `/audit?principal=agent:${bot.name}&action=credential.read`);
    expect(audit.body.events).toHaveLength(1);
    expect(audit.body.events[0]).toMatchObject({
      actor: `agent:${bot.name}`,
      action: "credential.read",
      outcome: "success",
      details: { read: `${bot.name}-audited@1`, via: "key" },
    });
    expect(JSON.stringify(audit.body)).not.toContain("audited-secret-value");
  });

  it("accepts an access token whose sub is the agent", async () => {
    await put(`${bot.name}-tok`, { value: "via-token" });
    await grant(bot.name, [`${bot.name}-tok`]);
    const issued = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: agentKey }),
    });
    expect(issued.status).toBe(200);
    const { access_token } = (await issued.json()) as { access_token: string };
    const res = await read(access_token);
    expect(res.status).toBe(200);
    expect((await readJson<CredentialsBody>(res)).credentials[`${bot.name}-tok`]?.value).toBe("via-token");
  });

  it("refuses callers that are not agents (403) and requests without a valid credential (401)", async () => {
    await kw.admin("POST", "/consumers", { name: `shop-${bot.name}` });
    const consumer = await kw.admin("POST", "/keys", { owner: `consumer:shop-${bot.name}`, scopes: ["agent:*"] });
    for (const path of ["/v1/credentials", "/v1/credentials/events"]) {
      const denied = await fetch(`${kw.url}${path}`, { headers: { authorization: `Bearer ${consumer.body.secret}` } });
      expect(denied.status).toBe(403);
      expect((await readJson<ApiErrorBody>(denied)).error.code).toBe("forbidden");
      const none = await fetch(`${kw.url}${path}`);
      expect(none.status).toBe(401);
      expect((await readJson<ApiErrorBody>(none)).error.code).toBe("missing_credentials");
      const bad = await fetch(`${kw.url}${path}`, { headers: { "x-api-key": "kwk_not_a_real_key" } });
      expect((await readJson<ApiErrorBody>(bad)).error.code).toBe("invalid_key");
    }
  });

  it("forgets an agent's grants when the agent is deleted", async () => {
    await put(`${bot.name}-x`, { value: "x" });
    await grant(bot.name, [`${bot.name}-x`]);
    expect((await kw.admin("DELETE", `/agents/${bot.name}`)).status).toBe(204);
    expect((await kw.admin("POST", "/agents", { name: bot.name, upstream: "http://127.0.0.1:9" })).status).toBe(201);
    const key = await kw.admin("POST", "/keys", { owner: `agent:${bot.name}`, scopes: [] });
    expect((await readJson<CredentialsBody>(await read(key.body.secret))).credentials).toEqual({});
  });
});

describe("GET /v1/credentials/events", () => {
  let bot: { name: string; key: string };
  beforeEach(async () => {
    bot = await newAgent();
  });

  it("sends changed on update and rollback, removed on delete and ungrant, only for read grants, with heartbeats", async () => {
    const [a, b, inj, other] = ["a", "b", "inj", "other"].map((x) => `${bot.name}-${x}`) as [
      string,
      string,
      string,
      string,
    ];
    for (const name of [a, b, inj, other]) await put(name, { value: `v-${name}` });
    await grant(bot.name, [a, b], [inj]);
    const s = await events(bot.key);
    expect(s.status).toBe(200);
    expect(s.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(await s.nextComment()).toBe("connected");
    expect(await s.nextComment()).toBe("keep-alive");

    await put(other, { value: "ignored" }); // not granted
    await put(inj, { value: "ignored" }); // inject only
    await put(a, { value: "a-2" });
    const changed = await s.next();
    expect(changed.event).toBe("changed");
    expect(data(changed)).toEqual({ name: a, version: 2 });
    expect(changed.id).toMatch(/^\d+$/);

    await kw.admin("POST", `/credentials/${a}/rollback`, { version: 1 });
    expect(data(await s.next())).toEqual({ name: a, version: 3 });
    await kw.admin("DELETE", `/credentials/${b}`);
    const removed = await s.next();
    expect(removed.event).toBe("removed");
    expect(data(removed)).toEqual({ name: b });
    await grant(bot.name, [inj]); // a ungranted, inj now readable: one change, two events
    const pair = [await s.next(), await s.next()];
    expect(pair.map((e) => [e.event, data(e).name])).toEqual([
      ["removed", a],
      ["changed", inj],
    ]);
    // One id per change: only the last event of the group carries it.
    expect(pair[0]!.id).toBeUndefined();
    expect(pair[1]!.id).toMatch(/^\d+$/);
    expect(s.raw()).not.toContain("v-");
    expect(s.raw()).not.toContain("ignored");
  });

  it("replays what a client missed from Last-Event-ID, and from ?since= the cursor of a GET", async () => {
    const [a, b] = [`${bot.name}-a`, `${bot.name}-b`];
    await put(a, { value: "1" });
    await put(b, { value: "1" });
    await grant(bot.name, [a, b]);
    const first = await events(bot.key);
    await put(a, { value: "2" });
    const seen = await first.next();
    first.close();

    await put(b, { value: "2" });
    await put(a, { value: "3" });
    await kw.admin("DELETE", `/credentials/${b}`);
    const again = await events(bot.key, { "last-event-id": seen.id! });
    const replay = [await again.next(), await again.next()];
    expect(replay.map((e) => [e.event, data(e)])).toEqual([
      ["changed", { name: a, version: 3 }],
      ["removed", { name: b }],
    ]);

    const snapshot = await readJson<CredentialsBody>(await read(bot.key));
    await put(a, { value: "4" });
    const fromCursor = await openSse(`${kw.url}/v1/credentials/events?since=${snapshot.cursor}`, {
      authorization: `Bearer ${bot.key}`,
    });
    streams.push(fromCursor);
    expect(data(await fromCursor.next())).toEqual({ name: a, version: 4 });
  });

  it("ends a stream when its key is revoked", async () => {
    await put(`${bot.name}-r`, { value: "1" });
    await grant(bot.name, [`${bot.name}-r`]);
    const s = await events(bot.key);
    const id = (await kw.admin("GET", `/keys?owner=agent:${bot.name}`)).body.items[0].id;
    expect((await kw.admin("POST", `/keys/${id}/revoke`)).status).toBe(200);
    await s.ended;
    const retry = await fetch(`${kw.url}/v1/credentials/events`, { headers: { authorization: `Bearer ${bot.key}` } });
    expect(retry.status).toBe(401);
    expect((await readJson<ApiErrorBody>(retry)).error.code).toBe("key_revoked");
  });

  it("holds hundreds of clients: one change reaches every one of them", async () => {
    const name = `${bot.name}-fan`;
    await put(name, { value: "1" });
    await grant(bot.name, [name]);
    const clients = await Promise.all(Array.from({ length: 300 }, () => events(bot.key)));
    await Promise.all(clients.map((c) => c.nextComment()));
    await put(name, { value: "2" });
    const got = await Promise.all(clients.map((c) => c.next()));
    expect(new Set(got.map((e) => e.data))).toEqual(new Set([JSON.stringify({ name, version: 2 })]));
    for (const c of clients) c.close();
  });
});

describe("token providers over HTTP", () => {
  it("fetches the first token before answering the PUT, serves it with expires_at, and announces each new one", async () => {
    const fake = await startFakeTokenEndpoint({ clientId: "app", clientSecret: "provider-secret" });
    try {
      const bot = await newAgent();
      const name = `${bot.name}-azure`;
      const created = await put(
        name,
        { type: "oauth2_client_credentials", token_url: fake.url, client_id: "app", client_secret: "provider-secret" },
        201,
      );
      expect(created.body).toMatchObject({
        type: "oauth2_client_credentials",
        version: 1,
        status: "ok",
        provider: { token_url: fake.url, client_id: "app", scope: null },
        expires_at: expect.any(String),
      });
      expect(JSON.stringify(created.body)).not.toContain("provider-secret");
      await grant(bot.name, [name]);
      const body = await readJson<CredentialsBody>(await read(bot.key));
      expect(body.credentials[name]).toEqual({ value: "tok-1", version: 1, expires_at: created.body.expires_at });

      const s = await events(bot.key);
      const again = await put(
        name,
        { type: "oauth2_client_credentials", token_url: fake.url, client_id: "app", client_secret: "provider-secret" },
        200,
      );
      expect(again.body.version).toBe(2);
      expect(data(await s.next())).toEqual({ name, version: 2 });

      const rejected = await put(
        name,
        { type: "oauth2_client_credentials", token_url: fake.url, client_id: "app", client_secret: "wrong" },
        200,
      );
      expect(rejected.body).toMatchObject({
        version: 2,
        status: "error",
        status_message: "token endpoint answered 401 (invalid_client)",
      });
      // The token fetched before stays current until it expires.
      expect((await readJson<CredentialsBody>(await read(bot.key))).credentials[name]?.value).toBe("tok-2");
    } finally {
      await fake.close();
    }
  });
});
