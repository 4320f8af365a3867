import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AccessTokenMinter, accessTokenMinter } from "../../test-support/access-token-minter.js";
import {
  accountOf,
  mcpClient,
  setUserCredential,
  textOf,
  userKey,
  writeMcpConfig,
} from "../../test-support/mcp/fixtures.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { startUpstream } from "../../test-support/upstream.js";
import { readJson, type TokenEndpointBody } from "../../test-support/wire.js";
import { mcpResource, mcpResourceMetadataUrl } from "../auth/mcp-resource.js";

/**
 * Issue 16 item 2 (SPEC §12): a token an MCP client asked for one server (RFC 8707, `aud` =
 * `<issuer>/mcp/<server>`) works at that server's `/mcp/{server}` only: not at another server,
 * not at Keyward's own endpoints, not at the gateway, not in a token exchange. Tokens are minted
 * with the server's own signing keys in the shape of an OAuth client's (`client_id` `oac_…`).
 */
const ALICE_KEY = "AKIA-alice-resource-canary-41c9";
const ALPHA_SECRET = "alpha-read-secret-resource-canary-77d0";
const TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";

let kw: TestServer;
let up: Awaited<ReturnType<typeof startUpstream>>;
let minter: AccessTokenMinter;
let alphaKeyId: string;
let betaKey: string;

/** An OAuth client's token for alice, bound to `aud`. */
const aliceFor = (aud: string | string[], scope = "mcp:cloud mcp:garbage agent:alpha") =>
  minter.mint({ sub: "user:alice", aud, client_id: "oac_inspector", scope });
/** A token of agent alpha resting on its key, bound to `aud`: refused only for its audience. */
const alphaFor = (aud: string) =>
  minter.mint({ sub: "agent:alpha", aud, client_id: alphaKeyId, scope: "agent:beta mcp:cloud" });

const call = async (method: string, path: string, bearer: string | undefined, body?: unknown) => {
  const res = await fetch(`${kw.url}${path}`, {
    method,
    headers: {
      ...(bearer !== undefined ? { authorization: `Bearer ${bearer}` } : {}),
      ...(body !== undefined
        ? { "content-type": "application/json", accept: "application/json, text/event-stream" }
        : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: each test asserts the shape it needs
  const parsed: Record<string, any> = text ? JSON.parse(text) : {};
  return { status: res.status, headers: res.headers, text, body: parsed };
};

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
};

const exchange = async (params: Record<string, string>) => {
  const res = await fetch(`${kw.url}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: EXCHANGE, subject_token_type: TOKEN_TYPE, ...params }).toString(),
  });
  return { status: res.status, body: await readJson<TokenEndpointBody>(res) };
};

beforeAll(async () => {
  up = await startUpstream();
  kw = await startTestServer({}, { configFile: writeMcpConfig({ toolTimeoutMs: 5_000 }) });
  minter = await accessTokenMinter(kw);
  await setUserCredential(kw, "alice", "cloud_key", ALICE_KEY);
  for (const name of ["alpha", "beta", "gamma"]) {
    expect((await kw.admin("POST", "/agents", { name, upstream: up.url })).status).toBe(201);
  }
  const alpha = await kw.admin("POST", "/keys", { owner: "agent:alpha", scopes: ["agent:beta", "mcp:cloud"] });
  alphaKeyId = alpha.body.key.id;
  betaKey = (await kw.admin("POST", "/keys", { owner: "agent:beta", scopes: [] })).body.secret;
  expect((await kw.admin("PUT", "/credentials/alpha_read", { value: ALPHA_SECRET })).status).toBe(201);
  const inject = await kw.admin("PUT", "/credentials/alpha_inject", {
    value: "inject-canary",
    egress: { base_url: up.url },
  });
  expect(inject.status).toBe(201);
  const grants = await kw.admin("PUT", "/agents/alpha/grants", {
    credentials: [
      { name: "alpha_read", mode: "read" },
      { name: "alpha_inject", mode: "inject" },
    ],
    may_call: ["beta"],
  });
  expect(grants.status).toBe(200);
  expect((await kw.admin("PUT", "/agents/beta/grants", { credentials: [], may_call: ["gamma"] })).status).toBe(200);
});

afterAll(async () => {
  await kw?.close();
  await up?.close();
});

describe("a token bound to MCP server cloud", () => {
  it("works at /mcp/cloud through the official MCP client: initialize, list, call", async () => {
    const client = await mcpClient(kw.url, "cloud", aliceFor(mcpResource(minter.issuer, "cloud")));
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toContain("whoami");
      expect(textOf(await client.callTool({ name: "whoami", arguments: {} }))).toContain(accountOf(ALICE_KEY));
    } finally {
      await client.close();
    }
  });

  it("is refused at /mcp/garbage (401 invalid_token with garbage's challenge), though its scopes name garbage", async () => {
    const r = await call("POST", "/mcp/garbage", aliceFor(mcpResource(minter.issuer, "cloud")), INITIALIZE);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("invalid_token");
    expect(r.body.error.request_id).toBeTruthy();
    expect(r.headers.get("www-authenticate")).toBe(
      `Bearer realm="keyward", resource_metadata="${mcpResourceMetadataUrl(minter.issuer, "garbage")}"`,
    );
    // control: the same claims bound to garbage get in
    expect(
      (await call("POST", "/mcp/garbage", aliceFor(mcpResource(minter.issuer, "garbage")), INITIALIZE)).status,
    ).toBe(200);
  });

  it("matches its resource exactly: a trailing slash, a longer name, another origin, an agent's name are refused", async () => {
    const base = mcpResource(minter.issuer, "cloud");
    for (const aud of [`${base}/`, `${base}x`, base.replace("127.0.0.1", "localhost"), "cloud", "alpha"]) {
      const r = await call("POST", "/mcp/cloud", aliceFor(aud), INITIALIZE);
      expect(r.status, aud).toBe(401);
      expect(r.body.error.code).toBe("invalid_token");
    }
    // With the right resource among its audiences it is accepted.
    expect((await call("POST", "/mcp/cloud", aliceFor(["alpha", base]), INITIALIZE)).status).toBe(200);
  });

  it("a user's token for the issuer still works at /mcp/cloud (today's tokens)", async () => {
    const res = await fetch(`${kw.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: await userKey(kw, "alice", ["mcp:cloud"]) }),
    });
    const token = (await readJson<TokenEndpointBody>(res)).access_token as string;
    expect((await call("POST", "/mcp/cloud", token, INITIALIZE)).status).toBe(200);
    expect((await call("POST", "/mcp/cloud", aliceFor(minter.issuer), INITIALIZE)).status).toBe(200);
  });
});

describe("a token bound to an MCP server is refused everywhere else", () => {
  const cloud = () => mcpResource(minter.issuer, "cloud");

  it("control: alpha's token for the issuer reads alpha's credentials", async () => {
    const r = await call("GET", "/v1/credentials", alphaFor(minter.issuer));
    expect(r.status).toBe(200);
    expect(r.body.credentials.alpha_read.value).toBe(ALPHA_SECRET);
  });

  it("GET /v1/credentials and its event stream refuse it", async () => {
    for (const path of ["/v1/credentials", "/v1/credentials/events"]) {
      const r = await call("GET", path, alphaFor(cloud()));
      expect(r.status, path).toBe(401);
      expect(r.body.error.code).toBe("invalid_token");
      expect(r.text).not.toContain(ALPHA_SECRET);
    }
  });

  it("egress refuses it: the upstream is never called", async () => {
    const before = up.seen.length;
    expect((await call("GET", "/egress/alpha_inject/echo", alphaFor(minter.issuer))).status).toBe(200);
    expect(up.seen.length).toBe(before + 1);
    const r = await call("GET", "/egress/alpha_inject/echo", alphaFor(cloud()));
    expect(r.status).toBe(401);
    expect(up.seen.length).toBe(before + 1);
  });

  it("the gateway refuses it, for an agent its scopes name", async () => {
    expect((await call("GET", "/agents/beta/echo", alphaFor(minter.issuer))).status).toBe(200);
    const r = await call("GET", "/agents/beta/echo", alphaFor(cloud()));
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("invalid_token");
    const user = await call("GET", "/agents/alpha/echo", aliceFor(cloud()));
    expect(user.status).toBe(401);
  });

  it("a user's self service refuses it", async () => {
    expect((await call("GET", "/v1/users/me/credentials", aliceFor(minter.issuer))).status).toBe(200);
    const r = await call("GET", "/v1/users/me/credentials", aliceFor(cloud()));
    expect(r.status).toBe(401);
    expect(r.text).not.toContain(ALICE_KEY);
  });

  it("token exchange refuses it as the subject, with or without an actor, and as the actor", async () => {
    // control: alice's token for the issuer is exchanged for agent alpha without an actor
    const ok = await exchange({ subject_token: aliceFor(minter.issuer), audience: "alpha" });
    expect(ok.status).toBe(200);
    const alone = await exchange({ subject_token: aliceFor(cloud()), audience: "alpha" });
    expect(alone.status).toBe(400);
    expect(alone.body.access_token).toBeUndefined();
    const held = await exchange({
      subject_token: alphaFor(cloud()),
      actor_token: betaKey,
      actor_token_type: TOKEN_TYPE,
      audience: "gamma",
    });
    expect(held.status).toBe(400);
    expect(held.body.error).toBe("invalid_grant");
    const asActor = await exchange({
      subject_token: aliceFor(minter.issuer),
      actor_token: alphaFor(cloud()),
      actor_token_type: TOKEN_TYPE,
      audience: "beta",
    });
    expect(asActor.status).toBe(400);
    expect(asActor.body.error).toBe("invalid_grant");
  });
});
