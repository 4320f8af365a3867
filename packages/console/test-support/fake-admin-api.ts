import type { Agent, Consumer, CredentialDetail, Grants, Key, Role } from "../src/types";
import { fakeCredentialRoutes } from "./fake-credential-routes";
import { aKey, error, json, NOW } from "./fixtures";

export interface Recorded {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  credentials: RequestCredentials | undefined;
}

const CSRF = "csrf-test-token";
const session = (r: Role) => ({
  admin_token: { id: `adm_${r}`, name: `${r}-token`, role: r },
  csrf_token: CSRF,
  expires_at: NOW,
  idle_timeout_s: 1800,
});

export interface FakeState {
  agents: Agent[];
  consumers: Consumer[];
  keys: Key[];
  credentials: CredentialDetail[];
  grants: Grants[];
}

export type Body = Record<string, unknown>;

/**
 * An in-memory stand-in for /admin/v1 for the component tests (the unit tier): it keeps agents,
 * consumers, keys, credentials and grants, checks the session's CSRF token on changes like the
 * server, and refuses changes for roles that may not make them. The e2e suite runs the console
 * against the real server.
 */
export function fakeAdminApi(opts: { tokens?: Record<string, Role> } = {}) {
  const tokens = opts.tokens ?? { kwa_owner: "owner" };
  const state: FakeState = { agents: [], consumers: [], keys: [], credentials: [], grants: [] };
  const requests: Recorded[] = [];
  let role: Role | null = null;
  let keySeq = 0;
  let down = false;
  const credentialRoutes = fakeCredentialRoutes(state);

  const keyRoutes = (method: string, path: string, body: Body): Response | undefined => {
    if (method === "POST" && path === "/admin/v1/keys") {
      keySeq += 1;
      const key = aKey({
        id: `key_${keySeq}`,
        owner: String(body.owner),
        name: (body.name as string | undefined) ?? null,
        scopes: body.scopes as string[],
        rate_limit: (body.rate_limit as Key["rate_limit"]) ?? null,
        quota: (body.quota as Key["quota"]) ?? null,
        ip_allow: (body.ip_allow as string[] | undefined) ?? null,
        expires_at: (body.expires_at as string | undefined) ?? null,
      });
      state.keys.push(key);
      return json(201, { key, secret: `kw_live_secret${keySeq}` });
    }
    const one = /^\/admin\/v1\/keys\/([^/]+)(\/[a-z]+)?$/.exec(path);
    if (!one) return undefined;
    const key = state.keys.find((k) => k.id === one[1]);
    if (!key) return error(404, "not_found", "no such key");
    const action = one[2];
    if (method === "GET" && (action === "/usage" || action === "/addresses")) return json(200, { items: [] });
    if (method === "GET" && !action) return json(200, key);
    if (method === "PATCH" && !action) {
      Object.assign(key, body);
      return json(200, key);
    }
    if (method !== "POST") return undefined;
    if (action === "/revoke") key.status = "revoked";
    else if (action === "/freeze") key.status = "frozen";
    else if (action === "/unfreeze") key.status = "active";
    else if (action === "/rotate") {
      keySeq += 1;
      const next = { ...key, id: `key_${keySeq}` };
      key.rotated_to = next.id;
      state.keys.push(next);
      return json(200, { key: next, secret: `kw_live_secret${keySeq}`, previous: key });
    } else return undefined;
    return json(200, key);
  };

  const route = (method: string, path: string, body: Body, headers: Record<string, string>) => {
    if (method === "POST" && path === "/admin/v1/sessions") {
      const r = tokens[String(body.token)];
      if (!r) return error(401, "unauthorized", "invalid admin token");
      role = r;
      return json(201, session(r));
    }
    if (!role) return error(401, "unauthorized", "sign in first");
    // What a reloaded console asks first; the server's session outlives the page's memory.
    if (method === "GET" && path === "/admin/v1/sessions/current") return json(200, session(role));
    if (method !== "GET") {
      if (headers["x-csrf-token"] !== CSRF) return error(403, "forbidden", "missing or wrong CSRF token");
      if (path === "/admin/v1/sessions/current") {
        role = null;
        return new Response(null, { status: 204 });
      }
      if (role === "viewer" || role === "auditor") return error(403, "forbidden", `the ${role} role may not do this`);
    }
    // An auditor reads only audit and usage (admin/admin-roles.ts).
    if (role === "auditor" && method === "GET" && !/^\/admin\/v1\/(audit|usage)/.test(path)) {
      return error(403, "forbidden", "the auditor role may not do this");
    }
    const page = <T>(items: T[]) => json(200, { items, next_cursor: null });
    if (method === "GET" && path === "/admin/v1/agents") return page(state.agents);
    if (method === "GET" && path === "/admin/v1/consumers") return page(state.consumers);
    if (method === "GET" && path === "/admin/v1/keys") return page(state.keys);
    if (method === "GET" && path === "/admin/v1/alerts") return page([]);
    if (method === "GET" && path === "/admin/v1/usage")
      return json(200, { group_by: "key", from: NOW, to: NOW, items: [] });
    if (method === "POST" && path === "/admin/v1/agents") {
      if (state.agents.some((a) => a.name === body.name)) return error(409, "conflict", "agent already exists");
      const agent = { name: String(body.name), upstream: String(body.upstream), description: null, created_at: NOW };
      state.agents.push(agent);
      return json(201, agent);
    }
    return (
      keyRoutes(method, path, body) ??
      credentialRoutes(method, path, body) ??
      error(404, "not_found", `no route ${method} ${path}`)
    );
  };

  const fetch = async (input: string, init: RequestInit): Promise<Response> => {
    const headers = { ...(init.headers as Record<string, string>) };
    const body = init.body ? (JSON.parse(String(init.body)) as Body) : {};
    const method = init.method ?? "GET";
    requests.push({ method, path: input, headers, body, credentials: init.credentials });
    if (down) throw new TypeError("Failed to fetch");
    return route(method, input.split("?")[0] ?? input, body, headers);
  };

  return {
    fetch,
    state,
    requests,
    /** Makes every later request fail as if the server were stopped; `up` brings it back. */
    goDown: () => {
      down = true;
    },
    comeBack: () => {
      down = false;
    },
    /** Ends the session server-side, as an idle expiry would. */
    expireSession: () => {
      role = null;
    },
  };
}
