import { expect } from "vitest";
import { permissionFor, roleMay } from "../../src/admin/admin-roles.js";
import { type OpenApiDocument, operationsOf } from "./openapi-kit.js";

// biome-ignore lint/suspicious/noExplicitAny: bodies are validated against the document by `api`
type Api = (method: string, path: string, call?: Call) => Promise<{ status: number; body: any }>;
interface Call {
  auth?: string | null | undefined;
  json?: unknown;
  raw?: string;
  headers?: Record<string, string>;
}

/**
 * The admin-token and session operations' documented answers, and every admin operation's 403 for
 * a role that may not call it (an auditor may call only the audit log and usage). `api` sends as
 * the bootstrap owner unless told otherwise and checks each answer against the document.
 */
export async function exerciseAdminIdentities(
  doc: OpenApiDocument,
  api: Api,
  send: (method: string, path: string, call?: Call) => Promise<Response>,
  check: (method: string, path: string, res: Response) => Promise<unknown>,
): Promise<void> {
  const created = await api("POST", "/admin/v1/admin-tokens", { json: { name: "audit-team", role: "auditor" } });
  expect(created.status).toBe(201);
  const auditor = created.body.secret as string;
  expect((await api("POST", "/admin/v1/admin-tokens", { json: { name: "x", role: "root" } })).status).toBe(400);
  const viewer = await api("POST", "/admin/v1/admin-tokens", { json: { name: "eyes", role: "viewer" } });
  expect((await api("GET", "/admin/v1/admin-tokens?limit=10")).body.items.length).toBe(3);
  expect((await api("GET", "/admin/v1/admin-tokens?limit=0")).status).toBe(400);
  expect((await api("POST", `/admin/v1/admin-tokens/${viewer.body.admin_token.id}/revoke`)).status).toBe(200);
  expect((await api("POST", "/admin/v1/admin-tokens/adm_nobody/revoke")).status).toBe(404);
  expect((await api("POST", "/admin/v1/admin-tokens/adm_bootstrap/revoke")).status).toBe(409);

  for (const { method, path } of operationsOf(doc)) {
    const pattern = path.replace(/\{([^}]+)\}/g, ":$1");
    const permission = permissionFor(method.toUpperCase(), pattern);
    if (!path.startsWith("/admin/v1/") || permission === "public" || roleMay("auditor", permission)) continue;
    const concrete = path.replace(/\{[^}]+\}/g, "bot");
    const res = await api(method.toUpperCase(), concrete, {
      auth: `Bearer ${auditor}`,
      ...(method === "get" ? {} : { json: {} }),
    });
    expect(res.status, `${method} ${path}`).toBe(403);
  }

  // Sessions: sign in, read it back (200; 404 for a Bearer request, which has none), a change
  // without the CSRF token (403), sign out (204), then a dead cookie (401).
  const signIn = await send("POST", "/admin/v1/sessions", { auth: null, json: { token: auditor } });
  const cookie = (signIn.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const csrf = ((await check("POST", "/admin/v1/sessions", signIn)) as { csrf_token: string }).csrf_token;
  expect(signIn.status).toBe(201);
  const headers = { cookie };
  const mine = await api("GET", "/admin/v1/sessions/current", { auth: null, headers });
  expect(mine.status).toBe(200);
  expect(mine.body.csrf_token).toBe(csrf);
  expect((await api("GET", "/admin/v1/sessions/current")).status).toBe(404);
  expect((await api("DELETE", "/admin/v1/sessions/current", { auth: null, headers })).status).toBe(403);
  const out = await api("DELETE", "/admin/v1/sessions/current", {
    auth: null,
    headers: { ...headers, "x-csrf-token": csrf },
  });
  expect(out.status).toBe(204);
  expect((await api("DELETE", "/admin/v1/sessions/current", { auth: null, headers })).status).toBe(401);
  expect((await api("GET", "/admin/v1/sessions/current", { auth: null, headers })).status).toBe(401);
  expect((await api("POST", "/admin/v1/sessions", { auth: null, json: { token: "kwa_wrong" } })).status).toBe(401);
  expect((await api("POST", "/admin/v1/sessions", { auth: null, json: { token: 1 } })).status).toBe(400);
}

/** Spends the sign-in bound of this address (429): run last, every later sign-in from here is refused. */
export async function exerciseSignInBound(api: Api): Promise<void> {
  let last = 0;
  for (let i = 0; i < 12 && last !== 429; i++) {
    last = (await api("POST", "/admin/v1/sessions", { auth: null, json: { token: "kwa_wrong" } })).status;
  }
  expect(last).toBe(429);
}
