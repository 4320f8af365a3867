import {
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
} from "@modelcontextprotocol/sdk/client/auth.js";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AccessTokenMinter, accessTokenMinter } from "../../test-support/access-token-minter.js";
import { mcpClient, setUserCredential, textOf, userKey, writeMcpConfig } from "../../test-support/mcp/fixtures.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { mcpResource } from "../auth/mcp-resource.js";

/**
 * Issue 16 items 2 and 3 at a real server (SPEC §12): the challenges an MCP client starts its
 * OAuth flow from, the Protected Resource Metadata they point at (found by the official SDK's
 * discovery), and per-tool scopes `mcp:<server>:<tool>` end to end.
 */
const CAROL_KEY = "AKIA-carol-per-tool-canary-93be";
const PING = { jsonrpc: "2.0", id: 1, method: "ping" };

let kw: TestServer;
let minter: AccessTokenMinter;
let metadataUrl: string;

const post = async (path: string, bearer: string | undefined, body: unknown = PING) => {
  const res = await fetch(`${kw.url}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(bearer !== undefined ? { authorization: `Bearer ${bearer}` } : {}),
    },
    body: JSON.stringify(body),
  });
  const answer = (await res.json()) as { error: { code: string; message: string; request_id: string } };
  return { res, status: res.status, challenge: res.headers.get("www-authenticate"), body: answer };
};

beforeAll(async () => {
  kw = await startTestServer({}, { configFile: writeMcpConfig({ toolTimeoutMs: 5_000 }) });
  minter = await accessTokenMinter(kw);
  metadataUrl = `${minter.issuer}/.well-known/oauth-protected-resource/mcp/cloud`;
  await setUserCredential(kw, "carol", "cloud_key", CAROL_KEY);
});
afterAll(async () => kw?.close());

describe("401: the challenge points at the server's protected resource metadata", () => {
  it("for a missing, invalid, expired or unknown credential, keeping the SPEC §4 body", async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = minter.mint({
      sub: "user:carol",
      aud: minter.issuer,
      client_id: "oac_x",
      scope: "mcp:cloud",
      exp: now - 5,
    });
    const cases: Array<[string | undefined, string]> = [
      [undefined, "missing_credentials"],
      ["eyJhbGciOiJub25lIn0.e30.", "invalid_token"],
      [expired, "token_expired"],
      ["kwk_notarealkey", "invalid_key"],
    ];
    for (const [bearer, code] of cases) {
      const r = await post("/mcp/cloud", bearer);
      expect(r.status, code).toBe(401);
      expect(r.body.error).toMatchObject({ code });
      expect(r.body.error.request_id).toBeTruthy();
      expect(r.challenge).toBe(`Bearer realm="keyward", resource_metadata="${metadataUrl}"`);
    }
  });

  it("the official MCP SDK reads it: resource_metadata is the document's URL", async () => {
    const r = await post("/mcp/cloud", undefined);
    expect(extractWWWAuthenticateParams(r.res).resourceMetadataUrl?.href).toBe(metadataUrl);
  });

  it("a server name outside the name rule is not echoed: the realm only", async () => {
    for (const name of ["Cloud", "a%22b", "x".repeat(64)]) {
      const r = await post(`/mcp/${name}`, undefined);
      expect(r.status).toBe(401);
      expect(r.challenge).toBe('Bearer realm="keyward"');
    }
  });
});

describe("browser-based clients (CORS): any page may call with a bearer token and read the challenge", () => {
  it("a preflight of /mcp/{server} and of its metadata is answered", async () => {
    const pre = await fetch(`${kw.url}/mcp/cloud`, {
      method: "OPTIONS",
      headers: {
        origin: "http://localhost:6274",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, mcp-protocol-version",
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
    expect(pre.headers.get("access-control-allow-methods")).toBe("POST");
    expect(pre.headers.get("access-control-allow-headers")).toContain("authorization");
    expect(pre.headers.get("access-control-allow-credentials")).toBeNull();
    const meta = await fetch(metadataUrl, { method: "OPTIONS", headers: { origin: "http://localhost:6274" } });
    expect(meta.status).toBe(204);
    expect(meta.headers.get("access-control-allow-headers")).toBe("mcp-protocol-version");
  });

  it("the 401 and a successful answer may be read by the page, the challenge included", async () => {
    const denied = await post("/mcp/cloud", undefined);
    expect(denied.res.headers.get("access-control-allow-origin")).toBe("*");
    expect(denied.res.headers.get("access-control-expose-headers")).toBe("www-authenticate");
    const ok = await post("/mcp/cloud", await userKey(kw, "carol", ["mcp:cloud"]));
    expect(ok.status).toBe(200);
    expect(ok.res.headers.get("access-control-allow-origin")).toBe("*");
  });
});

describe("403: the insufficient_scope challenge names the scope", () => {
  it("a user lacking any scope of the server, and an agent's key", async () => {
    expect((await kw.admin("POST", "/agents", { name: "helper", upstream: "http://127.0.0.1:9" })).status).toBe(201);
    const agent = (await kw.admin("POST", "/keys", { owner: "agent:helper", scopes: ["mcp:cloud"] })).body.secret;
    for (const bearer of [await userKey(kw, "carol", ["mcp:garbage", "mcp:cloudy:whoami"]), agent]) {
      const r = await post("/mcp/cloud", bearer);
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe("scope_denied");
      expect(r.challenge).toBe(
        `Bearer realm="keyward", error="insufficient_scope", scope="mcp:cloud", resource_metadata="${metadataUrl}"`,
      );
    }
  });
});

describe("GET /.well-known/oauth-protected-resource/mcp/{server} (RFC 9728)", () => {
  it("names the resource and Keyward as its authorization server; no scopes_supported (clients would ask for all)", async () => {
    const res = await fetch(metadataUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=300");
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(await res.json()).toEqual({
      resource: mcpResource(minter.issuer, "cloud"),
      authorization_servers: [minter.issuer],
      bearer_methods_supported: ["header"],
      resource_name: "Keyward MCP server cloud",
    });
  });

  it("is what the official MCP SDK finds from the server URL alone (path-aware discovery)", async () => {
    const found = await discoverOAuthProtectedResourceMetadata(new URL(`${kw.url}/mcp/cloud`));
    expect(found.resource).toBe(`${kw.url}/mcp/cloud`);
    expect(found.authorization_servers).toEqual([minter.issuer]);
  });

  it("an unknown server, a bad name and the root have none (404, SPEC error body, name not echoed)", async () => {
    for (const path of ["mcp/nosuch", "mcp/No%3Cscript%3E", "mcp", ""]) {
      const res = await fetch(`${kw.url}/.well-known/oauth-protected-resource${path ? `/${path}` : ""}`);
      expect(res.status, path).toBe(404);
      const text = await res.text();
      expect(JSON.parse(text).error.code).toBe("not_found");
      expect(text).not.toContain("nosuch");
      expect(text).not.toContain("script");
    }
  });
});

describe("per-tool scopes mcp:<server>:<tool>", () => {
  let carol: Client;
  beforeAll(async () => {
    // The admin API takes per-tool scopes on a user's key.
    carol = await mcpClient(kw.url, "cloud", await userKey(kw, "carol", ["mcp:cloud:whoami", "mcp:cloud:echo_args"]));
  });
  afterAll(async () => carol?.close());

  it("a per-tool key may initialize and lists only its tools", async () => {
    expect(carol.getServerVersion()?.name).toBe("keyward-mcp/cloud");
    expect((await carol.listTools()).tools.map((t) => t.name).sort()).toEqual(["echo_args", "whoami"]);
  });

  it("calls its tools; another tool is a tool error naming the missing scope, audited as denied", async () => {
    expect(textOf(await carol.callTool({ name: "whoami", arguments: {} }))).toContain("functions of acct-");
    const r = await carol.callTool({ name: "print_env", arguments: {} });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain("mcp:cloud:print_env");
    expect(textOf(r)).not.toContain(CAROL_KEY);
    const audit = await kw.admin("GET", "/audit?action=mcp.tool_call&principal=user:carol&limit=50");
    const events = audit.body.events as Array<{ outcome: string; code?: string; details?: { tool?: string } }>;
    expect(events.filter((e) => e.details?.tool === "print_env")).toMatchObject([
      { outcome: "denied", code: "scope_denied" },
    ]);
  });

  it("an MCP client's token for the server with one tool's scope (the OAuth shape) sees that tool only", async () => {
    const token = minter.mint({
      sub: "user:carol",
      aud: mcpResource(minter.issuer, "cloud"),
      client_id: "oac_desktop",
      scope: "mcp:cloud:whoami",
    });
    const client = await mcpClient(kw.url, "cloud", token);
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["whoami"]);
      expect(textOf(await client.callTool({ name: "pid", arguments: {} }))).toContain("mcp:cloud:pid");
    } finally {
      await client.close();
    }
  });
});
