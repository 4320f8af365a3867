import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keyward } from "../packages/sdk/src/index.js";
import { accountOf, textOf } from "../packages/server/test-support/mcp/fixtures.js";
import { AGENT, type Issue6, startIssue6 } from "./issue6-fixture.js";

/**
 * Issue 6 as a user story, on one Keyward: alice and bob sign in at their company's identity
 * provider, trade its ID token for a Keyward user token, store their own cloud keys with it, and
 * use the same MCP tool through the gateway, each seeing what their own key does and never a key.
 * An agent then acts for alice: it fetches her key with a token she had minted for it, and its
 * SDK-wrapped tool runs with her key, driven by the JWT the gateway forwarded on her call.
 */
const USERS = {
  alice: { email: "alice@example.com", key: "AKIA-chain-alice-7Qm2Vx9Lr4Tz" },
  bob: { email: "bob@example.com", key: "AKIA-chain-bob-3Hn8Kd1Wp6Yc" },
} as const;
type Name = keyof typeof USERS;

let env: Issue6;
const tokens = new Map<Name, string>();
const clients: Client[] = [];

/** Signs `who` in at the IdP and exchanges the ID token (once); the Keyward user token. */
async function signIn(who: Name): Promise<string> {
  const known = tokens.get(who);
  if (known) return known;
  const r = await env.exchangeIdToken(env.idToken(USERS[who].email));
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  tokens.set(who, r.body.access_token);
  return r.body.access_token;
}

/** Signed in, with the user's own cloud key stored through the self-service API. */
async function withOwnKey(who: Name): Promise<string> {
  const token = await signIn(who);
  const put = await env.putOwn(token, "cloud_key", USERS[who].key);
  expect([200, 201]).toContain(put.status);
  expect(JSON.stringify(put.body)).not.toContain(USERS[who].key);
  return token;
}

async function mcpAs(who: Name): Promise<Client> {
  const client = await env.mcp(await withOwnKey(who));
  clients.push(client);
  return client;
}

beforeAll(async () => {
  env = await startIssue6();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await env?.close();
});

describe("issue 6 end to end: IdP sign-in → own credential → MCP tool → agent acting for the user", () => {
  it("an IdP ID token for alice@example.com becomes a Keyward user token for user:alice@example.com", async () => {
    const token = await signIn("alice");
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: env.kw.url, aud: env.kw.url, sub: "user:alice@example.com" });
    expect(String(claims.scope).split(" ").sort()).toEqual(["agent:tools", "mcp:cloud", "mcp:tickets"]);

    // The ID token itself opens nothing at Keyward: only the exchanged token does.
    const raw = await env.putOwn(env.idToken(USERS.alice.email), "cloud_key", USERS.alice.key);
    expect(raw.status).toBe(401);
  });

  it("alice and bob store their own keys; each sees only the names back, never a value", async () => {
    for (const who of ["alice", "bob"] as const) {
      const token = await withOwnKey(who);
      const list = await env.call("/v1/users/me/credentials", { headers: { authorization: `Bearer ${token}` } });
      expect(list.status).toBe(200);
      expect(list.body.items.map((i: { name: string }) => i.name)).toEqual(["cloud_key"]);
      expect(JSON.stringify(list.body)).not.toContain(USERS[who].key);
    }
  });

  it("through /mcp/cloud with the official MCP client, each sees the effect of their own key and none of its value", async () => {
    const [alice, bob] = [await mcpAs("alice"), await mcpAs("bob")];
    const { tools } = await alice.listTools();
    expect(tools.map((t) => t.name)).toContain("whoami");

    const [a, b] = await Promise.all([
      alice.callTool({ name: "whoami", arguments: {} }),
      bob.callTool({ name: "whoami", arguments: {} }),
    ]);
    expect(textOf(a)).toBe(`functions of ${accountOf(USERS.alice.key)}: fn-a, fn-b`);
    expect(textOf(b)).toBe(`functions of ${accountOf(USERS.bob.key)}: fn-a, fn-b`);

    // A tool that prints its whole environment still shows no key: the gateway redacted it.
    const printed = await alice.callTool({ name: "print_env", arguments: {} });
    expect(JSON.parse(textOf(printed)).CLOUD_KEY).toBe("[redacted]");
    for (const r of [a, b, printed]) {
      expect(JSON.stringify(r)).not.toContain(USERS.alice.key);
      expect(JSON.stringify(r)).not.toContain(USERS.bob.key);
    }

    const audit = await env.admin("GET", "/audit?action=mcp.tool_call&principal=user:alice@example.com&limit=50");
    const calls = audit.body.events.map((e: { details: { tool: string } }) => e.details.tool);
    expect(calls).toEqual(expect.arrayContaining(["whoami", "print_env"]));
  });

  it("a token alice mints for the agent lets that agent, and only it, fetch her key; bob's gives bob's", async () => {
    await withOwnKey("alice");
    await withOwnKey("bob");
    const forAgent = async (who: Name) => {
      const r = await env.exchangeForAgent(await signIn(who));
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(decodeJwt(r.body.access_token)).toMatchObject({ aud: AGENT, sub: `user:${USERS[who].email}` });
      return r.body.access_token as string;
    };
    const [aliceForAgent, bobForAgent] = [await forAgent("alice"), await forAgent("bob")];

    const a = await env.toolCredentials(aliceForAgent, ["cloud_key"]);
    expect(a).toEqual({ status: 200, body: { credentials: { cloud_key: USERS.alice.key } } });
    const b = await env.toolCredentials(bobForAgent, ["cloud_key"]);
    expect(b).toEqual({ status: 200, body: { credentials: { cloud_key: USERS.bob.key } } });

    // Agent `other`, holding the same grant, cannot use a token alice minted for `tools`…
    const other = await env.toolCredentials(aliceForAgent, ["cloud_key"], env.otherKey);
    expect(other.status).toBe(401);
    expect(other.body.error.code).toBe("invalid_token");
    // …and the token meant for the agent opens neither the MCP gateway nor alice's own settings.
    const mcp = await env.call("/mcp/cloud", {
      method: "POST",
      headers: { authorization: `Bearer ${aliceForAgent}`, "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    // A token is accepted only where its audience is: at Keyward's own endpoints it is not valid.
    expect(mcp.status).toBe(401);
    expect((await env.putOwn(aliceForAgent, "cloud_key", "overwritten-by-agent")).status).toBe(401);
    expect((await env.toolCredentials(aliceForAgent, ["cloud_key"])).body.credentials.cloud_key).toBe(USERS.alice.key);
  });

  it("the agent's SDK tool, driven by the JWT the gateway forwarded on alice's call, runs with her key and shows her its effect only", async () => {
    await withOwnKey("alice");
    await withOwnKey("bob");
    const kw = await Keyward.connect({ url: env.kw.url, token: env.agentKey });
    try {
      // A CLI-style tool: a child process gets the key in its environment and prints it outright.
      const listFunctions = kw.tools.withUserCredentials(
        async (_args: object, ctx) => {
          const script =
            "const k = process.env.CLOUD_KEY; const h = require('node:crypto').createHash('sha256').update(k).digest('hex');" +
            "console.log('functions of acct-' + h.slice(0, 12) + ' (key ' + k + ')')";
          return { user: ctx.user, out: (await ctx.run(process.execPath, ["-e", script])).stdout.trim() };
        },
        {
          names: ["cloud_key"],
          inject: "env",
          env: { CLOUD_KEY: "cloud_key" },
          baseEnv: { PATH: process.env.PATH },
          name: "list_functions",
        },
      );
      env.onAgentCall((userToken) => listFunctions({}, { userToken }));

      for (const who of ["alice", "bob"] as const) {
        const before = env.forwarded.length;
        const r = await env.viaGateway(await signIn(who));
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(r.body).toEqual({
          user: `user:${USERS[who].email}`,
          out: `functions of ${accountOf(USERS[who].key)} (key [redacted])`,
        });
        // The agent got a JWT Keyward signed for it (never the user's own token), naming the user.
        const jwt = env.forwarded[before] as string;
        expect(jwt).not.toBe(tokens.get(who));
        expect(decodeJwt(jwt)).toMatchObject({ sub: `user:${USERS[who].email}`, aud: AGENT });
      }
      // Unchanged by the injection: only the child had the key.
      expect(process.env.CLOUD_KEY).toBeUndefined();

      await kw.tools.flush();
      const audit = await env.admin("GET", "/audit?action=tool.call&limit=50");
      const mine = audit.body.events.filter((e: { details: { tool: string } }) => e.details.tool === "list_functions");
      expect(mine).toEqual(
        expect.arrayContaining(
          (["alice", "bob"] as const).map((who) =>
            expect.objectContaining({
              actor: `agent:${AGENT}`,
              target: `user:${USERS[who].email}`,
              outcome: "success",
              details: expect.objectContaining({ redactions: 1 }),
            }),
          ),
        ),
      );
      expect(JSON.stringify(audit.body)).not.toContain(USERS.alice.key);
    } finally {
      await kw.close();
    }
  });
});
