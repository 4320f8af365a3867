import { createSign, generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type OidcProvider, startOidcProvider } from "../../test-support/oidc-provider.js";
import {
  exerciseAdminIdentities,
  exerciseSignInBound,
} from "../../test-support/openapi/admin-identities-conformance.js";
import { exerciseOAuthFlow, exerciseRegistrationBounds } from "../../test-support/openapi/oauth-conformance.js";
import { Conformance, type OpenApiDocument, operationsOf } from "../../test-support/openapi/openapi-kit.js";
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from "../../test-support/server.js";
import { startWebhookReceiver, type WebhookReceiver } from "../../test-support/webhook-receiver.js";

/**
 * Every operation of the served `/openapi.json`, exercised against a real server: each real
 * response's status must be documented for that operation and its body must match the
 * document's schema for that status. Each documented (operation, status) pair must be seen by
 * some request here, so the document cannot promise an answer nobody checked.
 */

let kw: TestServer;
let conf: Conformance;
let doc: OpenApiDocument;
/** Credentials made along the way: an agent's key, a user's key. */
const keys = { agent: "", agentId: "", user: "" };

interface Call {
  auth?: string | null | undefined;
  json?: unknown;
  raw?: string;
  form?: Record<string, string>;
  headers?: Record<string, string>;
}

async function send(method: string, path: string, call: Call = {}): Promise<Response> {
  const auth = call.auth === undefined ? `Bearer ${TEST_ADMIN_TOKEN}` : call.auth;
  const headers: Record<string, string> = { ...(auth ? { authorization: auth } : {}), ...call.headers };
  let body: string | undefined;
  if (call.form) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(call.form).toString();
  } else if (call.json !== undefined || call.raw !== undefined) {
    headers["content-type"] = "application/json";
    body = call.raw ?? JSON.stringify(call.json);
  }
  return fetch(`${kw.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
}

/** Sends, checks the answer against the document, and returns the status and parsed body. */
// biome-ignore lint/suspicious/noExplicitAny: bodies were just validated against the document's schema
async function api(method: string, path: string, call: Call = {}): Promise<{ status: number; body: any }> {
  const res = await send(method, path, call);
  return { status: res.status, body: await conf.check(method, path, res) };
}

const bearer = (secret: string) => `Bearer ${secret}`;
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

/** The leak reporter's key (leaks: in the config) and a webhook endpoint that answers, one that is down. */
const reporter = generateKeyPairSync("ec", { namedCurve: "P-256" });
let receiver: WebhookReceiver;
/** The sign-in provider of the authorization server for MCP clients. */
let idp: OidcProvider;

async function configFile(): Promise<string> {
  receiver = await startWebhookReceiver();
  idp = await startOidcProvider();
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const dead = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const secret = `whsec_${randomBytes(32).toString("base64")}`;
  const pem = reporter.publicKey.export({ type: "spki", format: "pem" }).toString().trim().split("\n");
  const file = join(mkdtempSync(join(tmpdir(), "kw-conf-")), "keyward.yaml");
  writeFileSync(
    file,
    [
      // An MCP server for its protected resource metadata (never contacted here).
      "mcp:",
      "  servers:",
      `    docs: {url: "http://127.0.0.1:${dead}/mcp"}`,
      "trusted_issuers:",
      `  - {issuer: "${idp.url}", jwks_uri: "${idp.jwksUri}", audience: keyward, share_user_ids_with_keys: true, scopes: ["mcp:docs"]}`,
      "mcp_authorization:",
      `  sign_in: {issuer: "${idp.url}", client_id: keyward}`,
      "  max_clients: 4",
      "  registrations_per_minute: 8",
      "webhooks:",
      `  - {url: "${receiver.url}/up", secret: "${secret}", events: [key.revoked]}`,
      `  - {url: "http://127.0.0.1:${dead}/down", secret: "${secret}", events: [key.revoked]}`,
      "leaks:",
      "  public_keys:",
      "    - id: reporter",
      "      pem: |",
      ...pem.map((l) => `        ${l}`),
    ].join("\n"),
  );
  return file;
}

beforeAll(async () => {
  kw = await startTestServer({}, { configFile: await configFile(), webhooks: { maxAttempts: 1 } });
  const res = await fetch(`${kw.url}/openapi.json`);
  doc = (await res.json()) as OpenApiDocument;
  conf = new Conformance(doc);
  await conf.check("GET", "/openapi.json", await fetch(`${kw.url}/openapi.json`));
});
afterAll(async () => {
  await kw?.close();
  await receiver?.close();
  await idp?.close();
});

describe("the document matches real answers", () => {
  it("agents and consumers: create, list, get, update, delete, and their errors", async () => {
    for (const kind of ["agents", "consumers"] as const) {
      const make = kind === "agents" ? { name: "bot", upstream: "http://127.0.0.1:9/" } : { name: "acme" };
      const name = make.name;
      expect((await api("POST", `/admin/v1/${kind}`, { json: make })).status).toBe(201);
      expect((await api("POST", `/admin/v1/${kind}`, { json: make })).status).toBe(409);
      expect((await api("POST", `/admin/v1/${kind}`, { json: { ...make, surprise: 1 } })).status).toBe(400);
      const list = await api("GET", `/admin/v1/${kind}?limit=1`);
      expect(list.body.items.map((i: { name: string }) => i.name)).toEqual([name]);
      expect((await api("GET", `/admin/v1/${kind}?limit=0`)).status).toBe(400);
      expect((await api("GET", `/admin/v1/${kind}/${name}`)).body.name).toBe(name);
      expect((await api("GET", `/admin/v1/${kind}/nobody`)).status).toBe(404);
      const patch = kind === "agents" ? { description: "the bot" } : { metadata: { tier: "gold" } };
      expect((await api("PATCH", `/admin/v1/${kind}/${name}`, { json: patch })).status).toBe(200);
      expect((await api("PATCH", `/admin/v1/${kind}/nobody`, { json: patch })).status).toBe(404);
      expect((await api("PATCH", `/admin/v1/${kind}/${name}`, { json: { name: 1 } })).status).toBe(400);
      expect((await api("DELETE", `/admin/v1/${kind}/nobody`)).status).toBe(404);
    }
    await api("POST", "/admin/v1/consumers", { json: { name: "gone" } });
    expect((await api("DELETE", "/admin/v1/consumers/gone")).status).toBe(204);
    await api("POST", "/admin/v1/agents", { json: { name: "gone", upstream: "http://127.0.0.1:9/" } });
    expect((await api("DELETE", "/admin/v1/agents/gone")).status).toBe(204);
  });

  it("keys: issue, list, get, update, revoke, freeze, unfreeze, rotate", async () => {
    const agentKey = await api("POST", "/admin/v1/keys", { json: { owner: "agent:bot", scopes: ["agent:bot"] } });
    expect(agentKey.status).toBe(201);
    keys.agent = agentKey.body.secret;
    keys.agentId = agentKey.body.key.id;
    const userKey = await api("POST", "/admin/v1/keys", { json: { owner: "user:alice", scopes: ["agent:bot"] } });
    keys.user = userKey.body.secret;
    expect((await api("POST", "/admin/v1/keys", { json: { owner: "nobody", scopes: [] } })).status).toBe(400);
    expect((await api("GET", "/admin/v1/keys?owner=agent:bot")).body.items).toHaveLength(1);
    expect((await api("GET", "/admin/v1/keys?owner=bot")).status).toBe(400);

    const spare = (await api("POST", "/admin/v1/keys", { json: { owner: "consumer:acme", scopes: [] } })).body.key;
    const id = spare.id as string;
    expect((await api("GET", `/admin/v1/keys/${id}`)).body.owner).toBe("consumer:acme");
    const limits = {
      rate_limit: { limit: 5, window_s: 60 },
      quota: { limit: 9, period: "day" },
      ip_allow: ["10.0.0.0/8"],
    };
    expect((await api("PATCH", `/admin/v1/keys/${id}`, { json: { name: "spare", ...limits } })).body.quota).toEqual(
      limits.quota,
    );
    expect((await api("PATCH", `/admin/v1/keys/${id}`, { json: { scopes: "all" } })).status).toBe(400);
    expect((await api("POST", `/admin/v1/keys/${id}/freeze`)).body.status).toBe("frozen");
    expect((await api("POST", `/admin/v1/keys/${id}/unfreeze`)).body.status).toBe("active");
    const rotated = await api("POST", `/admin/v1/keys/${id}/rotate`, { json: { grace_s: 60 } });
    expect(rotated.status).toBe(201);
    expect(rotated.body.previous.rotated_to).toBe(rotated.body.key.id);
    expect((await api("POST", `/admin/v1/keys/${id}/rotate`, { json: { grace_s: -1 } })).status).toBe(400);
    expect((await api("POST", `/admin/v1/keys/${rotated.body.key.id}/revoke`)).body.status).toBe("revoked");

    const unknown = "key_doesnotexist";
    for (const [method, suffix, json] of [
      ["GET", "", undefined],
      ["PATCH", "", { name: "x" }],
      ["POST", "/revoke", undefined],
      ["POST", "/freeze", undefined],
      ["POST", "/unfreeze", undefined],
      ["POST", "/rotate", {}],
    ] as const) {
      expect((await api(method, `/admin/v1/keys/${unknown}${suffix}`, { json })).status, `${method} ${suffix}`).toBe(
        404,
      );
    }
  });

  it("credentials and grants", async () => {
    const put = (json: unknown) => api("PUT", "/admin/v1/credentials/openai", { json });
    expect((await put({ value: "sk-first" })).status).toBe(201);
    const second = await put({ value: "sk-second", egress: { base_url: "http://127.0.0.1:9" } });
    expect(second.status).toBe(200);
    expect(JSON.stringify(second.body)).not.toContain("sk-second");
    expect((await put({ value: 1 })).status).toBe(400);
    expect((await api("GET", "/admin/v1/credentials?limit=5")).body.items).toHaveLength(1);
    expect((await api("GET", "/admin/v1/credentials?limit=x")).status).toBe(400);
    expect((await api("GET", "/admin/v1/credentials/openai")).body.versions).toHaveLength(2);
    expect((await api("GET", "/admin/v1/credentials/nothing")).status).toBe(404);
    const rollback = (name: string, json: unknown) => api("POST", `/admin/v1/credentials/${name}/rollback`, { json });
    expect((await rollback("openai", { version: 1 })).body.version).toBe(3);
    expect((await rollback("openai", { version: 0 })).status).toBe(400);
    expect((await rollback("nothing", { version: 1 })).status).toBe(404);
    await api("PUT", "/admin/v1/credentials/temp", { json: { value: "t" } });
    expect((await api("DELETE", "/admin/v1/credentials/temp")).status).toBe(204);
    expect((await api("DELETE", "/admin/v1/credentials/temp")).status).toBe(404);

    const grants = { credentials: [{ name: "openai", mode: "read" }], user_credentials: ["ticket", "wiki"] };
    expect((await api("PUT", "/admin/v1/agents/bot/grants", { json: grants })).body.agent).toBe("bot");
    expect((await api("PUT", "/admin/v1/agents/nobody/grants", { json: grants })).status).toBe(404);
    expect((await api("PUT", "/admin/v1/agents/bot/grants", { json: { credentials: "all" } })).status).toBe(400);
    expect((await api("GET", "/admin/v1/agents/bot/grants")).body.user_credentials).toEqual(["ticket", "wiki"]);
    expect((await api("GET", "/admin/v1/agents/nobody/grants")).status).toBe(404);
  });

  it("an agent's credentials: values, 304 on its ETag, the event stream; not for other callers", async () => {
    const res = await send("GET", "/v1/credentials", { auth: bearer(keys.agent) });
    const etag = res.headers.get("etag") as string;
    const body = (await conf.check("GET", "/v1/credentials", res)) as { credentials: Record<string, unknown> };
    expect(Object.keys(body.credentials)).toEqual(["openai"]);
    const again = { auth: bearer(keys.agent), headers: { "if-none-match": etag } };
    expect((await api("GET", "/v1/credentials", again)).status).toBe(304);
    expect((await api("GET", "/v1/credentials?since=soon", { auth: bearer(keys.agent) })).status).toBe(400);
    expect((await api("GET", "/v1/credentials", { auth: bearer(keys.user) })).status).toBe(403);

    const stream = new AbortController();
    const events = await fetch(`${kw.url}/v1/credentials/events`, {
      headers: { "x-api-key": keys.agent },
      signal: stream.signal,
    });
    expect(events.status).toBe(200);
    await conf.check("GET", "/v1/credentials/events", events);
    stream.abort();
    expect((await api("GET", "/v1/credentials/events", { auth: bearer(keys.user) })).status).toBe(403);
  });

  it("users' credentials: the admin's view and the user's own", async () => {
    const admin = (method: string, path: string, json?: unknown) => api(method, `/admin/v1/users${path}`, { json });
    expect((await admin("PUT", "/alice/credentials/ticket", { value: "t-1" })).status).toBe(201);
    expect((await admin("PUT", "/alice/credentials/ticket", { value: "t-2" })).status).toBe(200);
    expect((await admin("PUT", "/alice/credentials/ticket", { value: null })).status).toBe(400);
    expect((await admin("PUT", "/alice/credentials/scratch", { value: "s" })).status).toBe(201);
    expect((await admin("DELETE", "/alice/credentials/scratch")).status).toBe(204);
    expect((await admin("DELETE", "/alice/credentials/scratch")).status).toBe(404);
    expect((await admin("GET", "?credential=ticket")).body.items[0].user).toBe("alice");
    expect((await admin("GET", "?credential=no%20such")).status).toBe(400);
    expect((await admin("GET", "/alice/credentials")).body.items[0].name).toBe("ticket");
    expect((await admin("GET", "/..../credentials")).status).toBe(400);

    const me = (method: string, path: string, auth: string, json?: unknown) =>
      api(method, `/v1/users/me/credentials${path}`, { auth: bearer(auth), json });
    expect((await me("PUT", "/notes", keys.user, { value: "n-1" })).status).toBe(201);
    expect((await me("PUT", "/notes", keys.user, { value: "n-2" })).status).toBe(200);
    expect((await me("PUT", "/notes", keys.user, { value: false })).status).toBe(400);
    expect((await me("PUT", "/notes", keys.agent, { value: "x" })).status).toBe(403);
    expect((await me("GET", "", keys.user)).body.items.map((i: { name: string }) => i.name)).toContain("notes");
    expect((await me("GET", "", keys.agent)).status).toBe(403);
    expect((await me("DELETE", "/notes", keys.agent)).status).toBe(403);
    expect((await me("DELETE", "/notes", keys.user)).status).toBe(204);
    expect((await me("DELETE", "/notes", keys.user)).status).toBe(404);
  });

  it("tokens, and the tool paths a token unlocks", async () => {
    const issued = await api("POST", "/v1/auth/token", { auth: null, json: { api_key: keys.user, audience: "bot" } });
    expect(issued.status).toBe(200);
    const userToken = issued.body.access_token as string;
    expect((await api("POST", "/v1/auth/token", { auth: null, json: { api_key: "kwk_wrong" } })).status).toBe(400);

    const oauth = (path: string, form: Record<string, string>, auth: string | null) =>
      api("POST", path, { auth, form });
    const client = basic(keys.agentId, keys.agent);
    const minted = await oauth("/oauth/token", { grant_type: "client_credentials" }, client);
    expect(minted.body.token_type).toBe("Bearer");
    expect((await oauth("/oauth/token", { grant_type: "password" }, client)).status).toBe(400);
    expect((await oauth("/oauth/token", { grant_type: "client_credentials" }, basic(keys.agentId, "no"))).status).toBe(
      401,
    );
    const refreshed = await oauth(
      "/oauth/token",
      { grant_type: "refresh_token", refresh_token: issued.body.refresh_token },
      null,
    );
    expect(refreshed.status).toBe(200);

    const introspected = await oauth("/oauth/introspect", { token: userToken }, bearer(keys.agent));
    expect(introspected.body.active).toBe(true);
    expect((await oauth("/oauth/introspect", { token: "nonsense" }, bearer(keys.agent))).body).toEqual({
      active: false,
    });
    expect((await oauth("/oauth/introspect", {}, bearer(keys.agent))).status).toBe(400);
    expect((await oauth("/oauth/introspect", { token: userToken }, null)).status).toBe(401);

    const tools = (json: unknown, auth = keys.agent) =>
      api("POST", "/v1/tools/credentials", { auth: bearer(auth), json });
    const fetched = await tools({ user_token: userToken, names: ["ticket"] });
    expect(fetched.body).toEqual({ credentials: { ticket: "t-2" } });
    expect((await tools({ user_token: userToken, names: ["openai"] })).status).toBe(403);
    expect((await tools({ user_token: userToken, names: ["wiki"] })).status).toBe(404);
    expect((await tools({ user_token: userToken, names: [] })).status).toBe(400);
    expect((await tools({ user_token: userToken, names: ["ticket"] }, keys.user)).status).toBe(403);
    const event = { tool: "search", user: "user:alice", outcome: "ok", redactions: 0 };
    const record = (json: unknown, auth = keys.agent) => api("POST", "/v1/audit/events", { auth: bearer(auth), json });
    expect((await record(event)).status).toBe(201);
    expect((await record({ ...event, outcome: "maybe" })).status).toBe(400);
    expect((await record(event, keys.user)).status).toBe(403);

    const revoke = (form: Record<string, string>, auth: string | null) => oauth("/oauth/revoke", form, auth);
    expect((await revoke({ token: minted.body.access_token }, client)).status).toBe(200);
    expect((await revoke({ token: userToken, token_type_hint: "id_token" }, client)).status).toBe(400);
    expect((await revoke({ token: userToken }, null)).status).toBe(401);
  });

  it("the public token metadata", async () => {
    const jwks = await api("GET", "/.well-known/jwks.json", { auth: null });
    expect(jwks.body.keys.length).toBeGreaterThan(0);
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
      expect((await api("GET", path, { auth: null })).body.issuer).toBe(kw.url);
    }
    const prm = await api("GET", "/.well-known/oauth-protected-resource/mcp/docs", { auth: null });
    expect(prm.body.resource).toBe(`${kw.url}/mcp/docs`);
    expect((await api("GET", "/.well-known/oauth-protected-resource/mcp/nope", { auth: null })).status).toBe(404);
  });

  it("audit, master key and signing keys", async () => {
    const events = await api("GET", "/admin/v1/audit?limit=5&action=agent.create");
    expect(events.body.events[0].action).toBe("agent.create");
    expect((await api("GET", "/admin/v1/audit?since=yesterday")).status).toBe(400);
    expect((await api("GET", "/admin/v1/audit/verify")).body.ok).toBe(true);
    expect((await api("GET", "/admin/v1/audit/verify?checkpoint_seq=1")).status).toBe(400);
    expect((await api("GET", "/admin/v1/master-key")).body.keys.length).toBeGreaterThan(0);
    expect((await api("POST", "/admin/v1/master-key/rotate", { json: {} })).body.failed).toEqual([]);
    expect((await api("POST", "/admin/v1/master-key/rotate", { json: { now: true } })).status).toBe(400);
    const before = (await api("GET", "/admin/v1/signing-keys")).body.active_kid;
    expect((await api("POST", "/admin/v1/signing-keys/rotate")).body.previous_kid).toBe(before);
  });

  it("usage: a key's buckets and addresses, the busiest keys, and their errors", async () => {
    const id = keys.agentId;
    const series = await api(
      "GET",
      `/admin/v1/keys/${id}/usage?step=1d&from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z`,
    );
    expect(series.body.items.map((b: { t: string }) => b.t)).toEqual([
      "2026-01-01T00:00:00.000Z",
      "2026-01-02T00:00:00.000Z",
    ]);
    expect((await api("GET", `/admin/v1/keys/${id}/usage?step=5m`)).status).toBe(400);
    expect((await api("GET", "/admin/v1/keys/key_doesnotexist/usage")).status).toBe(404);
    expect((await api("GET", `/admin/v1/keys/${id}/addresses`)).status).toBe(200);
    expect((await api("GET", "/admin/v1/keys/key_doesnotexist/addresses")).status).toBe(404);
    expect((await api("GET", "/admin/v1/usage?group_by=agent&top=5")).body.group_by).toBe("agent");
    expect((await api("GET", "/admin/v1/usage?group_by=everything")).status).toBe(400);
  });

  it("alerts: a canary key's use listed, acked, and their errors", async () => {
    const issued = await api("POST", "/admin/v1/keys", { json: { owner: "consumer:acme", scopes: [], canary: true } });
    expect(issued.body.key.canary).toBe(true);
    expect((await send("GET", "/agents/bot/x", { auth: bearer(issued.body.secret) })).status).toBe(401);
    let listed = await api("GET", `/admin/v1/alerts?key_id=${issued.body.key.id}&severity=critical`);
    await expect
      .poll(async () => {
        listed = await api("GET", `/admin/v1/alerts?key_id=${issued.body.key.id}&severity=critical`);
        return listed.body.items.length;
      })
      .toBe(1);
    const id = listed.body.items[0].id;
    expect((await api("POST", `/admin/v1/alerts/${id}/ack`)).body.status).toBe("acked");
    expect((await api("POST", "/admin/v1/alerts/alert_doesnotexist/ack")).status).toBe(404);
    expect((await api("GET", "/admin/v1/alerts?status=closed")).status).toBe(400);
  });

  it("webhook deliveries and leak reports, and their errors", async () => {
    await api("POST", "/admin/v1/consumers", { json: { name: "hooked" } });
    const made = await api("POST", "/admin/v1/keys", { json: { owner: "consumer:hooked", scopes: [] } });
    await api("POST", `/admin/v1/keys/${made.body.key.id}/revoke`);
    const [failed, delivered] = await vi.waitFor(async () => {
      const f = (await api("GET", "/admin/v1/webhooks/deliveries?status=failed&limit=1")).body.items[0];
      const d = (await api("GET", "/admin/v1/webhooks/deliveries?status=delivered&limit=1")).body.items[0];
      expect(f && d).toBeTruthy();
      return [f, d];
    });
    expect((await api("POST", `/admin/v1/webhooks/deliveries/${failed.id}/retry`)).body.event_id).toBe(failed.event_id);
    expect((await api("POST", `/admin/v1/webhooks/deliveries/${delivered.id}/retry`)).status).toBe(409);
    expect((await api("POST", "/admin/v1/webhooks/deliveries/whd_nope/retry")).status).toBe(404);
    expect((await api("GET", "/admin/v1/webhooks/deliveries?status=lost")).status).toBe(400);

    const leak = (
      body: string,
      signature = createSign("sha256").update(body).sign(reporter.privateKey).toString("base64"),
    ) =>
      api("POST", "/v1/leaks", {
        auth: null,
        raw: body,
        headers: { "github-public-key-identifier": "reporter", "github-public-key-signature": signature },
      });
    const entry = { token: "not-a-keyward-key", type: "keyward_api_key", url: "https://example.com/x" };
    expect((await leak(JSON.stringify([entry]))).body[0].label).toBe("false_positive");
    expect((await leak(JSON.stringify([entry]), "bm9wZQ==")).status).toBe(401);
    expect((await leak(JSON.stringify([{ type: "x" }]))).status).toBe(400);
    expect((await leak(JSON.stringify([{ ...entry, url: "u".repeat(300_000) }]))).status).toBe(413);
  });

  it("admin tokens and console sessions, and every admin operation's 403 for a role without its permission", async () => {
    // biome-ignore lint/suspicious/noExplicitAny: conf.check validated the body against the document
    await exerciseAdminIdentities(doc, api, send, (m, p, r) => conf.check(m, p, r) as Promise<any>);
  });

  it("every secured operation refuses a request without credentials with 401", async () => {
    for (const { method, path, operation } of operationsOf(doc)) {
      if (operation.security.length === 0) continue;
      const concrete = path.replace(/\{[^}]+\}/g, "bot");
      const res = await send(method.toUpperCase(), concrete, {
        auth: null,
        ...(operation.requestBody ? { json: {} } : {}),
      });
      expect(res.status, operation.operationId).toBe(401);
      await conf.check(method, concrete, res);
    }
  });

  it("every operation with a JSON body answers malformed JSON with 400", async () => {
    for (const { method, path, operation } of operationsOf(doc)) {
      if (!operation.requestBody?.content["application/json"]) continue;
      const concrete = path.replace("{user}", "alice").replace(/\{[^}]+\}/g, "bot");
      const auth = operation.security.some((s) => "admin_token" in s)
        ? undefined
        : operation.security.length === 0
          ? null
          : bearer(path.startsWith("/v1/users/me") ? keys.user : keys.agent);
      const res = await send(method.toUpperCase(), concrete, { auth, raw: '{"truncated": ' });
      expect(res.status, operation.operationId).toBe(400);
      await conf.check(method, concrete, res);
    }
  });

  it("the authorization server for MCP clients: registration, authorize, callback, consent, code", async () => {
    await exerciseOAuthFlow(kw.url, `${kw.url}/mcp/docs`, TEST_ADMIN_TOKEN, (m, p, r) => conf.check(m, p, r));
  });

  it("registrations beyond the table (503) and the address's bound (429) (last: it spends both)", async () => {
    await exerciseRegistrationBounds(kw.url, (m, p, r) => conf.check(m, p, r));
  });

  it("sign-in attempts beyond the bound of an address answer 429 (last: it spends the bound)", async () => {
    await exerciseSignInBound(api);
  });

  it("saw every documented status of every operation", () => {
    expect(conf.uncovered()).toEqual([]);
  });
});
