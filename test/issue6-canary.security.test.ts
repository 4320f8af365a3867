import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keyward } from "../packages/sdk/src/index.js";
import { accountOf, textOf } from "../packages/server/test-support/mcp/fixtures.js";
import { type HttpUpstream, startHttpUpstream, ticketsOf } from "../packages/server/test-support/mcp/http-upstream.js";
import { type Issue6, startIssue6 } from "./issue6-fixture.js";

/**
 * Canaries for issue 6. Distinctive user credentials, IdP ID tokens, Keyward user tokens, user and
 * agent keys are planted, every issue-6 path is run with them, refusals included (wrong user,
 * wrong agent, missing credential, bad tokens, tools that print, encode, split or throw the key,
 * a tool that hangs, one that crashes), and then each canary is searched for, raw and encoded,
 * in every HTTP and MCP response but the one designed to return it, the debug logs, every page of
 * the audit log, /metrics, the data dir and what the agent's upstream received.
 */
const EMAIL = { alice: "alice@example.com", bob: "bob@example.com", frank: "frank@example.com" };
/** The canaries: user credentials first; the rest (tokens, keys) are planted as they are issued. */
const s = {
  aliceKey: "CANARY-alice-cloud-Jq4Wz8Rv2Xn6",
  bobKey: "CANARY-bob-cloud-Mc7Tp1Ks5Hd9",
  daveKey: "CANARY-dave-cloud-Ue3Lb6Ny0Qa2",
  aliceTicket: "CANARY-alice-ticket-Fo8Gi4Ew1Zr7",
  aliceSpare: "CANARY-alice-spare-Vy2Bk9Cm3Pt5",
  rejected: "CANARY-never-stored-Xh5Sd7Jn2Lw4",
  ...{ agentKey: "", aliceId: "", bobId: "", frankId: "", expiredId: "" },
  ...{ aliceToken: "", bobToken: "", frankToken: "", aliceForAgent: "", frankForAgent: "" },
  ...{ daveUserKey: "", erinUserKey: "", erinAccess: "", erinRefresh: "" },
};
/** The JWTs the gateway forwarded to the agent (its upstream may see these, nobody else). */
let forwarded: string[] = [];
const canaries = (): Array<[string, string]> => [
  ...Object.entries(s),
  ...forwarded.map((jwt, i): [string, string] => [`forwarded${i}`, jwt]),
];

let env: Issue6;
let tickets: HttpUpstream;
let recording = false;
const logs: string[] = [];
const responses: Array<{ where: string; text: string; allowed: string[] }> = [];
const clients: Client[] = [];

/** fetch for every request of the test: keeps each response (status, headers, body) to search. */
const recordingFetch: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  if (!recording) return res;
  const text = await res.text();
  const url = new URL(input instanceof Request ? input.url : String(input));
  responses.push({
    where: `${init?.method ?? "GET"} ${url.pathname} → ${res.status}`,
    text: `${res.status}\n${[...res.headers].join("\n")}\n${text}`,
    allowed: [],
  });
  return new Response(text === "" ? null : text, { status: res.status, headers: res.headers });
};
/** The last response is the one designed to return these values. */
const allowLast = (...values: string[]) => responses.at(-1)?.allowed.push(...values);

/** A value as it could leak: raw, base64 and base64url at each byte alignment, hex, URL-encoded. */
function forms(value: string): string[] {
  const out = [value, Buffer.from(value).toString("hex"), encodeURIComponent(value)];
  for (let k = 0; k < 3; k++) {
    const tail = Buffer.from(value).subarray(k);
    const whole = tail.subarray(0, tail.length - (tail.length % 3));
    out.push(whole.toString("base64"), whole.toString("base64url"));
  }
  // A JWT's signature is what makes it a bearer value; its header and claims are public.
  const parts = value.split(".");
  if (parts.length === 3 && parts[2]) out.push(parts[2]);
  return [...new Set(out)];
}

function check(where: string, text: string, allowed: string[] = [], skip: (name: string) => boolean = () => false) {
  for (const [name, value] of canaries()) {
    expect(value, `${name} was never planted`).not.toBe("");
    if (allowed.includes(value) || skip(name)) continue;
    for (const f of forms(value))
      expect(text.includes(f), `${name} (${f.slice(0, 16)}…) found in ${where}`).toBe(false);
  }
}

async function tool(client: Client, name: string, args: Record<string, unknown> = {}) {
  try {
    return await client.callTool({ name, arguments: args });
  } catch (err) {
    responses.push({ where: `MCP client error on ${name}`, text: String((err as Error).stack), allowed: [] });
    return undefined;
  }
}
const mcp = async (bearer: string, server = "cloud") => {
  const c = await env.mcp(bearer, server);
  clients.push(c);
  return c;
};
const rawMcp = (bearer: string) =>
  env.call("/mcp/cloud", {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });

/** The token a successful exchange issued (its response is the one allowed to hold it). */
async function issued(exchange: Promise<{ status: number; body: { access_token: string } }>): Promise<string> {
  const r = await exchange;
  expect(r.status).toBe(200);
  allowLast(r.body.access_token);
  return r.body.access_token;
}
async function userKey(user: string, scopes: string[]): Promise<string> {
  const r = await env.admin("POST", "/keys", { owner: `user:${user}`, scopes });
  expect(r.status).toBe(201);
  allowLast(r.body.secret);
  return r.body.secret;
}

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  tickets = await startHttpUpstream();
  env = await startIssue6({
    fetch: recordingFetch,
    logger: pino({ level: "debug" }, sink),
    env: { KEYWARD_LOG_LEVEL: "debug" },
    ticketsUrl: tickets.url,
    toolTimeoutMs: 3000,
  });
  s.agentKey = env.agentKey;
  recording = true;

  // Sign-in at the IdP, and exchanges that must fail.
  const nowS = Math.floor(Date.now() / 1000);
  s.aliceId = env.idToken(EMAIL.alice);
  s.bobId = env.idToken(EMAIL.bob);
  s.frankId = env.idToken(EMAIL.frank);
  s.expiredId = env.idToken(EMAIL.alice, { iat: nowS - 900, exp: nowS - 300 });
  s.aliceToken = await issued(env.exchangeIdToken(s.aliceId));
  s.bobToken = await issued(env.exchangeIdToken(s.bobId));
  s.frankToken = await issued(env.exchangeIdToken(s.frankId));
  expect((await env.exchangeIdToken(s.expiredId)).status).toBe(400);
  expect((await env.exchangeIdToken(`${s.aliceId}x`)).status).toBe(400);
  expect((await env.exchangeForAgent(s.aliceId)).status).toBe(400);
  s.aliceForAgent = await issued(env.exchangeForAgent(s.aliceToken));
  s.frankForAgent = await issued(env.exchangeForAgent(s.frankToken));

  // Users store (and delete) their own credentials; writes that must be refused carry a canary too.
  expect((await env.putOwn(s.aliceToken, "cloud_key", s.aliceKey)).status).toBe(201);
  expect((await env.putOwn(s.bobToken, "cloud_key", s.bobKey)).status).toBe(201);
  expect((await env.putOwn(s.aliceToken, "ticket_token", s.aliceTicket)).status).toBe(201);
  expect((await env.putOwn(s.aliceToken, "spare", s.aliceSpare)).status).toBe(201);
  expect((await env.deleteOwn(s.aliceToken, "spare")).status).toBe(204);
  expect((await env.putOwn(s.aliceForAgent, "cloud_key", s.rejected)).status).toBe(401);
  expect((await env.putOwn(s.aliceId, "cloud_key", s.rejected)).status).toBe(401);
  expect((await env.putOwn(`${s.aliceToken}x`, "cloud_key", s.rejected)).status).toBe(401);
  expect((await env.putOwn(s.aliceToken, "__proto__", s.rejected)).status).toBe(400);
  const extra = await env.call("/v1/users/me/credentials/cloud_key", {
    method: "PUT",
    headers: { authorization: `Bearer ${s.aliceToken}`, "content-type": "application/json" },
    body: JSON.stringify({ value: 42, user: `bob ${s.rejected}`, [s.rejected]: s.rejected }),
  });
  expect(extra.status).toBe(400);
  expect((await env.admin("PUT", "/users/dave/credentials/cloud_key", { value: s.daveKey })).status).toBe(201);
  s.daveUserKey = await userKey("dave", ["mcp:cloud"]);
  s.erinUserKey = await userKey("erin", []);
  const minted = await env.call("/v1/auth/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ api_key: s.erinUserKey }),
  });
  expect(minted.status).toBe(200);
  [s.erinAccess, s.erinRefresh] = [minted.body.access_token, minted.body.refresh_token];
  allowLast(s.erinAccess, s.erinRefresh);

  // The MCP gateway: every leaky tool, a hang, a crash, a missing credential, an HTTP upstream.
  const alice = await mcp(s.aliceToken);
  await alice.listTools();
  expect(textOf(await tool(alice, "whoami"))).toContain(accountOf(s.aliceKey));
  expect(JSON.parse(textOf(await tool(alice, "print_env"))).CLOUD_KEY).toBe("[redacted]");
  for (const name of ["print_env_b64", "print_env_encoded", "split_secret", "structured", "throw_secret"]) {
    await tool(alice, name);
  }
  await tool(alice, "echo_args", { user_id: EMAIL.bob, name: "cloud_key" });
  expect((await tool(alice, "hang"))?.isError).toBe(true);
  await tool(alice, "crash");
  expect(textOf(await tool(alice, "whoami"))).toContain(accountOf(s.aliceKey));
  const bob = await mcp(s.bobToken);
  expect(textOf(await tool(bob, "whoami", { user_id: EMAIL.alice }))).toContain(accountOf(s.bobKey));
  await tool(bob, "print_env");
  const dave = await mcp(s.daveUserKey);
  expect(textOf(await tool(dave, "whoami"))).toContain(accountOf(s.daveKey));
  await tool(dave, "print_env_b64");
  const frank = await tool(await mcp(s.frankToken), "whoami");
  expect(frank?.isError).toBe(true);
  expect(textOf(frank)).toContain("cloud_key");
  const aliceTickets = await mcp(s.aliceToken, "tickets");
  expect(textOf(await tool(aliceTickets, "my_tickets"))).toBe(ticketsOf(`Bearer ${s.aliceTicket}`));
  await tool(aliceTickets, "echo_auth");
  for (const [bearer, status] of [
    [`${s.aliceToken}x`, 401],
    [s.aliceId, 401],
    [s.expiredId, 401],
    [s.aliceForAgent, 401], // a token held by an agent is not valid at Keyward's own endpoints
    [s.erinUserKey, 403],
    [s.erinAccess, 403],
  ] as const) {
    expect((await rawMcp(bearer)).status).toBe(status);
  }

  // The agent's tool-credential endpoint, allowed once, refused every other way.
  const ok = await env.toolCredentials(s.aliceForAgent, ["cloud_key"]);
  expect(ok.body).toEqual({ credentials: { cloud_key: s.aliceKey } });
  allowLast(s.aliceKey);
  for (const [token, names, key, status] of [
    [s.aliceForAgent, ["cloud_key"], env.otherKey, 401],
    [s.aliceForAgent, ["ticket_token"], env.agentKey, 403],
    [s.frankForAgent, ["cloud_key"], env.agentKey, 404],
    [s.aliceToken, ["cloud_key"], env.agentKey, 401],
    [`${s.aliceForAgent}x`, ["cloud_key"], env.agentKey, 401],
    [s.aliceId, ["cloud_key"], env.agentKey, 401],
    [s.aliceForAgent, ["cloud_key"], s.daveUserKey, 403],
  ] as const) {
    expect((await env.toolCredentials(token, [...names], key)).status).toBe(status);
  }

  // Through the gateway to the agent, whose SDK-wrapped tools get the user's key and leak it.
  const kw = await Keyward.connect({ url: env.kw.url, token: env.agentKey });
  const envTool = kw.tools.withUserCredentials(
    async (_a: object, ctx) => (await ctx.run(process.execPath, ["-e", "console.log(process.env.CLOUD_KEY)"])).stdout,
    { names: ["cloud_key"], inject: "env", env: { CLOUD_KEY: "cloud_key" }, name: "print_key" },
  );
  const throwing = kw.tools.withUserCredentials(
    async ({ credentials }: { credentials: Record<string, string> }) => {
      throw new Error(
        `cloud said no to ${credentials.cloud_key} (${Buffer.from(credentials.cloud_key ?? "").toString("base64")})`,
      );
    },
    { names: ["cloud_key"], inject: "params", name: "throwing" },
  );
  const headers = kw.tools.withUserCredentials(async (_a: object, ctx) => ctx.headers, {
    names: ["cloud_key"],
    inject: "headers",
    name: "headers",
  });
  env.onAgentCall((userToken, path) =>
    path === "/fail"
      ? throwing({}, { userToken })
      : path === "/headers"
        ? headers({}, { userToken })
        : envTool({}, { userToken }),
  );
  const run = await env.viaGateway(s.aliceToken);
  expect(run).toEqual({ status: 200, body: "[redacted]\n" });
  expect((await env.viaGateway(s.aliceToken, "/fail")).body).toMatch(/^tool failed: cloud said no to \[redacted\]/);
  expect((await env.viaGateway(s.aliceToken, "/headers")).body).toEqual({ Authorization: "Bearer [redacted]" });
  expect((await env.viaGateway(s.bobToken)).status).toBe(200);
  expect((await env.viaGateway(s.frankToken)).status).toBe(500);
  expect((await env.viaGateway(`${s.aliceToken}x`)).status).toBe(401);
  await kw.close();
  forwarded = [...env.forwarded];
  expect(forwarded.length).toBe(5);
}, 60_000);
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await env?.close();
  await tickets?.close();
});

const filesUnder = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });

describe("issue 6 canaries never leak", () => {
  it("are in no HTTP or MCP response but the one designed to return them", () => {
    expect(responses.length).toBeGreaterThan(60);
    for (const r of responses) check(r.where, r.text, r.allowed);
  });

  it("are not in the debug logs, any page of the audit log, or /metrics", async () => {
    expect(logs.length).toBeGreaterThan(0);
    check("logs", logs.join("\n"));
    let cursor: string | null = null;
    let events = 0;
    do {
      const page = await env.admin("GET", `/audit?limit=100${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.status).toBe(200);
      events += page.body.events.length;
      check(`audit page after ${cursor}`, JSON.stringify(page.body));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(events).toBeGreaterThan(40);
    check("metrics", await (await fetch(`${env.kw.url}/metrics`)).text());
  });

  it("are not in the data dir (read while the server runs: the SQLite file and its WAL)", () => {
    const files = filesUnder(env.kw.dataDir);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) check(file, readFileSync(file).toString("latin1"));
  });

  it("reach the agent's upstream only as the JWTs Keyward signed for it, never a user's own secret", () => {
    check("agent upstream", env.agentSeen.join("\n"), [], (name) => name.startsWith("forwarded"));
  });
});
