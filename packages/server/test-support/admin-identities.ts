import type { TestServer } from "./server.js";

/** One admin identity made through the API: its id, role and shown-once secret. */
export interface AdminIdentity {
  id: string;
  role: string;
  secret: string;
}

// biome-ignore lint/suspicious/noExplicitAny: test helper; each test asserts the shape it needs
export type Answer = { status: number; body: any; headers: Headers };

/** A request to `url` + `path` with a Bearer token (or none), JSON body and extra headers. */
export async function call(
  url: string,
  method: string,
  path: string,
  opts: { bearer?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(opts.bearer ? { authorization: `Bearer ${opts.bearer}` } : {}),
      ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
      ...opts.headers,
    },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** Creates an admin token with `role` as the server's bootstrap owner. */
export async function createAdmin(kw: TestServer, name: string, role: string): Promise<AdminIdentity> {
  const res = await call(kw.url, "POST", "/admin/v1/admin-tokens", { bearer: kw.adminToken, body: { name, role } });
  if (res.status !== 201) throw new Error(`creating admin token ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.admin_token.id, role, secret: res.body.secret };
}

/** A signed-in console session: the cookie pair to send and the CSRF token. */
export interface ConsoleSession {
  cookie: string;
  csrf: string;
  setCookie: string;
}

export async function signIn(
  url: string,
  token: string,
  headers: Record<string, string> = {},
): Promise<ConsoleSession> {
  const res = await call(url, "POST", "/admin/v1/sessions", { body: { token }, headers });
  if (res.status !== 201) throw new Error(`sign-in: ${res.status} ${JSON.stringify(res.body)}`);
  const setCookie = res.headers.get("set-cookie") ?? "";
  return { cookie: setCookie.split(";")[0] ?? "", csrf: res.body.csrf_token, setCookie };
}
