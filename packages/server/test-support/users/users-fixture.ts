import { expect } from "vitest";
import { startTestServer, type TestServer, type TestStartOptions } from "../server.js";
import { startUpstream } from "../upstream.js";

// biome-ignore lint/suspicious/noExplicitAny: test helper; each test asserts the shape it needs
export type Json = any;

export interface Reply {
  status: number;
  body: Json;
  headers: Headers;
}

/**
 * A Keyward with one upstream, and the calls the users tests make: agents with a key and a
 * `user_credentials` grant, users with a key, their tokens (minted, or forwarded by the gateway),
 * and the self-service and tool endpoints.
 */
export async function startUsersFixture(overrides: Record<string, string> = {}, opts: TestStartOptions = {}) {
  const up = await startUpstream();
  const kw: TestServer = await startTestServer(overrides, opts);
  let n = 0;

  async function call(method: string, path: string, credential: string | undefined, body?: unknown): Promise<Reply> {
    const res = await fetch(`${kw.url}${path}`, {
      method,
      headers: {
        ...(credential !== undefined ? { authorization: `Bearer ${credential}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  }

  return {
    kw,
    up,
    call,

    /** A fresh agent on the upstream, its key, and a grant of `userCredentials`. */
    async agent(userCredentials: string[]): Promise<{ name: string; key: string; keyId: string }> {
      const name = `tools-${++n}`;
      expect((await kw.admin("POST", "/agents", { name, upstream: up.url })).status).toBe(201);
      const key = await kw.admin("POST", "/keys", { owner: `agent:${name}`, scopes: [] });
      expect(key.status).toBe(201);
      const g = await kw.admin("PUT", `/agents/${name}/grants`, { credentials: [], user_credentials: userCredentials });
      expect(g.status, JSON.stringify(g.body)).toBe(200);
      return { name, key: key.body.secret, keyId: key.body.key.id };
    },

    /** A key with owner `user:<id>`. */
    async userKey(id: string, scopes: string[] = ["agent:*"], extra: Record<string, unknown> = {}) {
      const r = await kw.admin("POST", "/keys", { owner: `user:${id}`, scopes, ...extra });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return { id: r.body.key.id as string, secret: r.body.secret as string };
    },

    /** POST /v1/auth/token with a key (optionally for an agent audience). */
    async token(apiKey: string, body: Record<string, unknown> = {}): Promise<string> {
      const r = await call("POST", "/v1/auth/token", undefined, { api_key: apiKey, ...body });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.access_token as string;
    },

    /** Calls `agent` through the gateway with `credential`; answers the JWT its upstream received. */
    async forwarded(credential: string, agent: string): Promise<string> {
      const before = up.seen.length;
      const res = await fetch(`${kw.url}/agents/${agent}/echo`, { headers: { authorization: `Bearer ${credential}` } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      const seen = up.seen.slice(before).at(-1);
      const auth = seen?.headers.authorization;
      expect(auth).toMatch(/^Bearer ey/);
      return (auth as string).slice("Bearer ".length);
    },

    tools: (agentCredential: string, body: unknown) => call("POST", "/v1/tools/credentials", agentCredential, body),
    event: (agentCredential: string, body: unknown) => call("POST", "/v1/audit/events", agentCredential, body),
    selfPut: (credential: string, name: string, value: unknown) =>
      call("PUT", `/v1/users/me/credentials/${encodeURIComponent(name)}`, credential, { value }),
    selfDelete: (credential: string, name: string) =>
      call("DELETE", `/v1/users/me/credentials/${encodeURIComponent(name)}`, credential),
    selfList: (credential: string) => call("GET", "/v1/users/me/credentials", credential),
    adminPut: (user: string, name: string, value: unknown) =>
      kw.admin("PUT", `/users/${encodeURIComponent(user)}/credentials/${encodeURIComponent(name)}`, { value }),

    async close() {
      await kw.close();
      await up.close();
    },
  };
}

export type UsersFixture = Awaited<ReturnType<typeof startUsersFixture>>;
