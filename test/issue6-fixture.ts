import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { StartOptions } from "../packages/server/src/app.js";
import { TOOLS_SERVER } from "../packages/server/test-support/mcp/fixtures.js";
import { type OidcIssuer, startOidcIssuer } from "../packages/server/test-support/oidc-issuer.js";
import { startTestServer, TEST_ADMIN_TOKEN, type TestServer } from "../packages/server/test-support/server.js";

/**
 * One Keyward as issue 6 deploys it: an external identity provider it trusts (users sign in there,
 * by email), the `cloud` stdio MCP server fed each user's `cloud_key`, optionally the `tickets`
 * HTTP MCP server, and agent `tools` (granted the user credential `cloud_key`) whose upstream runs
 * whatever `onAgentCall` says with the JWT the gateway forwarded.
 */
export const AGENT = "tools";
export const OTHER_AGENT = "other";
export const ACCESS_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const IDP_AUDIENCE = "keyward";

// biome-ignore lint/suspicious/noExplicitAny: test helper; each test asserts the shape it needs
type Json = any;
export interface Reply {
  status: number;
  body: Json;
}

export interface Issue6Options {
  /** Every request the helpers make goes through it (the canary test records the responses). */
  fetch?: typeof fetch;
  logger?: StartOptions["logger"];
  env?: Record<string, string>;
  ticketsUrl?: string;
  toolTimeoutMs?: number;
}

export async function startIssue6(opts: Issue6Options = {}) {
  const doFetch = opts.fetch ?? fetch;
  const idp: OidcIssuer = await startOidcIssuer();
  const dir = mkdtempSync(join(tmpdir(), "kw-issue6-"));

  /** The agent's upstream: hands each call's forwarded JWT to `onAgentCall`, answers its result. */
  const forwarded: string[] = [];
  const agentSeen: string[] = [];
  let onAgentCall: (userToken: string, path: string) => Promise<unknown> = async () => ({});
  const agentUp = http.createServer((req, res) => {
    agentSeen.push(JSON.stringify({ url: req.url, headers: req.headers }));
    req.resume();
    req.on("end", () => {
      const token = String(req.headers.authorization ?? "").replace(/^Bearer /, "");
      forwarded.push(token);
      onAgentCall(token, req.url ?? "/").then(
        (result) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(result)),
        (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`tool failed: ${err.message}`),
      );
    });
  });
  await new Promise<void>((r) => agentUp.listen(0, "127.0.0.1", r));
  const agentUrl = `http://127.0.0.1:${(agentUp.address() as AddressInfo).port}`;

  const configFile = join(dir, "keyward.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      trusted_issuers: [
        {
          issuer: idp.url,
          jwks_uri: idp.jwksUri,
          audience: IDP_AUDIENCE,
          subject_claim: "email",
          scopes: ["mcp:cloud", "mcp:tickets", `agent:${AGENT}`],
        },
      ],
      mcp: {
        servers: {
          cloud: {
            command: process.execPath,
            args: [TOOLS_SERVER],
            env_from_user_credentials: { CLOUD_KEY: "cloud_key" },
          },
          ...(opts.ticketsUrl
            ? {
                tickets: {
                  url: opts.ticketsUrl,
                  headers_from_user_credentials: { Authorization: "Bearer {ticket_token}" },
                },
              }
            : {}),
        },
        ...(opts.toolTimeoutMs ? { tool_timeout_ms: opts.toolTimeoutMs } : {}),
      },
    }),
  );
  const kw: TestServer = await startTestServer(opts.env ?? {}, {
    configFile,
    ...(opts.logger ? { logger: opts.logger } : {}),
  });

  async function call(path: string, init: RequestInit = {}): Promise<Reply> {
    const res = await doFetch(`${kw.url}${path}`, init);
    const text = await res.text();
    let body: Json = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON (an agent's plain-text failure): the text is the body.
    }
    return { status: res.status, body };
  }
  const json = (method: string, body: unknown, bearer?: string): RequestInit => ({
    method,
    headers: { "content-type": "application/json", ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
  });
  const admin = async (method: string, path: string, body?: unknown): Promise<Reply> =>
    call(
      `/admin/v1${path}`,
      body === undefined
        ? { method, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } }
        : json(method, body, TEST_ADMIN_TOKEN),
    );
  const must = async (r: Promise<Reply>, what: string): Promise<Json> => {
    const reply = await r;
    if (reply.status >= 300) throw new Error(`${what}: ${reply.status} ${JSON.stringify(reply.body)}`);
    return reply.body;
  };
  const exchange = (params: Record<string, string>) =>
    call("/oauth/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE, ...params }).toString(),
    });

  await must(admin("POST", "/agents", { name: AGENT, upstream: agentUrl }), "agent");
  await must(admin("POST", "/agents", { name: OTHER_AGENT, upstream: agentUrl }), "other agent");
  const agentKey: string = (await must(admin("POST", "/keys", { owner: `agent:${AGENT}`, scopes: [] }), "key")).secret;
  const otherKey: string = (await must(admin("POST", "/keys", { owner: `agent:${OTHER_AGENT}`, scopes: [] }), "key"))
    .secret;
  for (const agent of [AGENT, OTHER_AGENT]) {
    await must(admin("PUT", `/agents/${agent}/grants`, { credentials: [], user_credentials: ["cloud_key"] }), "grant");
  }

  return {
    kw,
    idp,
    agentKey,
    otherKey,
    /** The JWTs the gateway forwarded to the agent, and every request the agent received. */
    forwarded,
    agentSeen,
    call,
    admin,
    onAgentCall(fn: typeof onAgentCall) {
      onAgentCall = fn;
    },
    /** An ID token the identity provider signs for this email (10 minutes unless `claims` say). */
    idToken: (email: string, claims: Record<string, unknown> = {}) =>
      idp.sign({ sub: `idp-${email}`, email, email_verified: true, aud: IDP_AUDIENCE, ...claims }),
    /** RFC 8693: an external JWT for a Keyward user token (`aud` = Keyward). */
    exchangeIdToken: (idToken: string) => exchange({ subject_token: idToken, subject_token_type: JWT_TYPE }),
    /** RFC 8693 with no actor: a user token for an agent audience. */
    exchangeForAgent: (userToken: string, audience = AGENT) =>
      exchange({ subject_token: userToken, subject_token_type: ACCESS_TYPE, audience }),
    putOwn: (bearer: string, name: string, value: string) =>
      call(`/v1/users/me/credentials/${name}`, json("PUT", { value }, bearer)),
    deleteOwn: (bearer: string, name: string) =>
      call(`/v1/users/me/credentials/${name}`, { method: "DELETE", headers: { authorization: `Bearer ${bearer}` } }),
    toolCredentials: (userToken: string, names: string[], key = agentKey) =>
      call("/v1/tools/credentials", json("POST", { user_token: userToken, names }, key)),
    /** Calls agent `tools` through the gateway (`/agents/tools/…`) with a user's credential. */
    viaGateway: (bearer: string, path = "/run") =>
      call(`/agents/${AGENT}${path}`, { headers: { authorization: `Bearer ${bearer}` } }),
    /** The official MCP SDK client on `/mcp/<server>` with a bearer value. */
    async mcp(bearer: string, server = "cloud"): Promise<Client> {
      const client = new Client({ name: "issue6-test", version: "1.0.0" });
      const transport = new StreamableHTTPClientTransport(new URL(`${kw.url}/mcp/${server}`), {
        requestInit: { headers: { Authorization: `Bearer ${bearer}` } },
        fetch: doFetch,
      });
      await client.connect(transport);
      return client;
    },
    async close() {
      await kw.close();
      await idp.close();
      agentUp.closeAllConnections();
      await new Promise<void>((r) => agentUp.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type Issue6 = Awaited<ReturnType<typeof startIssue6>>;
