import type { Agent, Consumer, Key, Role } from "../src/types";

export interface Recorded {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  credentials: RequestCredentials | undefined;
}

const error = (status: number, code: string, message: string) =>
  new Response(JSON.stringify({ error: { code, message, request_id: "req_test" } }), {
    status,
    headers: { "content-type": "application/json" },
  });
const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

const NOW = "2026-12-01T12:00:00.000Z";
const CSRF = "csrf-test-token";
const session = (r: Role) => ({
  admin_token: { id: `adm_${r}`, name: `${r}-token`, role: r },
  csrf_token: CSRF,
  expires_at: NOW,
  idle_timeout_s: 1800,
});

/**
 * An in-memory stand-in for /admin/v1 for the component tests (the unit tier): it keeps agents,
 * consumers and keys, checks the session's CSRF token on changes like the server, and refuses
 * changes for roles that may not make them. The e2e suite runs the console against the real server.
 */
export function fakeAdminApi(opts: { tokens?: Record<string, Role> } = {}) {
  const tokens = opts.tokens ?? { kwa_owner: "owner" };
  const state = { agents: [] as Agent[], consumers: [] as Consumer[], keys: [] as Key[] };
  const requests: Recorded[] = [];
  let role: Role | null = null;
  let keySeq = 0;
  let down = false;

  const route = (method: string, path: string, body: Record<string, unknown>, headers: Record<string, string>) => {
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
      if (role === "viewer" || role === "auditor") return error(403, "forbidden", `role ${role} may not do this`);
    }
    // An auditor reads only audit and usage (admin/admin-roles.ts).
    if (role === "auditor" && method === "GET" && !/^\/admin\/v1\/(audit|usage)/.test(path)) {
      return error(403, "forbidden", "role auditor may not read this");
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
    if (method === "POST" && path === "/admin/v1/keys") {
      keySeq += 1;
      const key: Key = {
        id: `key_${keySeq}`,
        prefix: "kw_live_ab",
        owner: String(body.owner),
        name: null,
        scopes: body.scopes as string[],
        status: "active",
        expires_at: null,
        rate_limit: (body.rate_limit as Key["rate_limit"]) ?? null,
        ip_allow: null,
        rotated_to: null,
        last_used_at: null,
        created_at: NOW,
      };
      state.keys.push(key);
      return json(201, { key, secret: `kw_live_secret${keySeq}` });
    }
    const one = /^\/admin\/v1\/keys\/([^/]+)(\/usage|\/addresses)?$/.exec(path);
    if (one) {
      const key = state.keys.find((k) => k.id === one[1]);
      if (!key) return error(404, "not_found", "no such key");
      if (method === "GET" && one[2]) return json(200, { items: [] });
      if (method === "GET") return json(200, key);
      if (method === "PATCH") {
        Object.assign(key, body);
        return json(200, key);
      }
    }
    const revoke = /^\/admin\/v1\/keys\/([^/]+)\/revoke$/.exec(path);
    if (method === "POST" && revoke) {
      const key = state.keys.find((k) => k.id === revoke[1]);
      if (!key) return error(404, "not_found", "no such key");
      key.status = "revoked";
      return json(200, key);
    }
    return error(404, "not_found", `no route ${method} ${path}`);
  };

  const fetch = async (input: string, init: RequestInit): Promise<Response> => {
    const headers = { ...(init.headers as Record<string, string>) };
    const body = init.body ? (JSON.parse(String(init.body)) as Record<string, unknown>) : {};
    const method = init.method ?? "GET";
    requests.push({ method, path: input, headers, body, credentials: init.credentials });
    if (down) throw new TypeError("Failed to fetch");
    return route(method, input.split("?")[0] ?? input, body, headers);
  };

  return {
    fetch,
    state,
    requests,
    /** Makes every later request fail as if the server were stopped. */
    goDown: () => {
      down = true;
    },
    /** Ends the session server-side, as an idle expiry would. */
    expireSession: () => {
      role = null;
    },
  };
}
