/**
 * Who may do what on the admin API: the one place that decides it (SPEC §11). Every route under
 * /admin/v1 is named here with the permission it needs; `requireAdmin` (admin-auth.ts) looks the
 * route up and refuses a role without it with 403 `forbidden`. Routes never compare roles.
 *
 * A route missing from the policy is not open: only an owner may call it (`permissionFor`), and
 * admin-roles.test.ts fails for any documented /admin/v1 operation that is missing, so a new route
 * is declared here before it ships.
 */

export const ROLES = ["owner", "operator", "viewer", "auditor"] as const;
export type Role = (typeof ROLES)[number];

/**
 * - `admins`: admin tokens, the master key and signing keys (owner only).
 * - `change`: agents, consumers, keys, credentials, grants, users, alert acks, webhook retries;
 *   every answer that shows a secret (a new key's, a rotated key's) is one of these.
 * - `read`: lists and metadata, never a secret value.
 * - `audit`: the audit log, its verification, usage.
 * - `signed_in`: any active admin identity (reading or ending its own console session).
 */
export type Permission = "admins" | "change" | "read" | "audit" | "signed_in";

const GRANTS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  owner: new Set(["admins", "change", "read", "audit", "signed_in"]),
  operator: new Set(["change", "read", "audit", "signed_in"]),
  viewer: new Set(["read", "audit", "signed_in"]),
  auditor: new Set(["audit", "signed_in"]),
};

/** `"METHOD pattern"` (the router's pattern) → what it needs; `public` needs no admin identity. */
export const ADMIN_POLICY: Readonly<Record<string, Permission | "public">> = {
  "GET /admin/v1/admin-tokens": "admins",
  "POST /admin/v1/admin-tokens": "admins",
  "POST /admin/v1/admin-tokens/:id/revoke": "admins",
  "POST /admin/v1/sessions": "public",
  "GET /admin/v1/sessions/current": "signed_in",
  "DELETE /admin/v1/sessions/current": "signed_in",
  "GET /admin/v1/master-key": "read",
  "POST /admin/v1/master-key/rotate": "admins",
  "GET /admin/v1/signing-keys": "read",
  "POST /admin/v1/signing-keys/rotate": "admins",

  "GET /admin/v1/agents": "read",
  "POST /admin/v1/agents": "change",
  "GET /admin/v1/agents/:name": "read",
  "PATCH /admin/v1/agents/:name": "change",
  "DELETE /admin/v1/agents/:name": "change",
  "GET /admin/v1/agents/:name/grants": "read",
  "PUT /admin/v1/agents/:name/grants": "change",
  "GET /admin/v1/consumers": "read",
  "POST /admin/v1/consumers": "change",
  "GET /admin/v1/consumers/:name": "read",
  "PATCH /admin/v1/consumers/:name": "change",
  "DELETE /admin/v1/consumers/:name": "change",
  "GET /admin/v1/keys": "read",
  "POST /admin/v1/keys": "change",
  "GET /admin/v1/keys/:id": "read",
  "PATCH /admin/v1/keys/:id": "change",
  "GET /admin/v1/keys/:id/addresses": "read",
  "POST /admin/v1/keys/:id/revoke": "change",
  "POST /admin/v1/keys/:id/rotate": "change",
  "POST /admin/v1/keys/:id/freeze": "change",
  "POST /admin/v1/keys/:id/unfreeze": "change",
  "GET /admin/v1/credentials": "read",
  "GET /admin/v1/credentials/:name": "read",
  "PUT /admin/v1/credentials/:name": "change",
  "DELETE /admin/v1/credentials/:name": "change",
  "POST /admin/v1/credentials/:name/rollback": "change",
  "GET /admin/v1/users": "read",
  "GET /admin/v1/users/:user/credentials": "read",
  "PUT /admin/v1/users/:user/credentials/:name": "change",
  "DELETE /admin/v1/users/:user/credentials/:name": "change",
  "GET /admin/v1/alerts": "read",
  "POST /admin/v1/alerts/:id/ack": "change",
  "GET /admin/v1/oauth-clients": "read",
  "DELETE /admin/v1/oauth-clients/:id": "change",
  "GET /admin/v1/webhooks/deliveries": "read",
  "POST /admin/v1/webhooks/deliveries/:id/retry": "change",

  "GET /admin/v1/audit": "audit",
  "GET /admin/v1/audit/verify": "audit",
  "GET /admin/v1/usage": "audit",
  "GET /admin/v1/keys/:id/usage": "audit",
};

/** What `method pattern` needs; an undeclared route needs `admins` (owners only), never nothing. */
export function permissionFor(method: string, pattern: string | undefined): Permission | "public" {
  const m = method === "HEAD" ? "GET" : method;
  return (pattern !== undefined ? ADMIN_POLICY[`${m} ${pattern}`] : undefined) ?? "admins";
}

export function roleMay(role: Role, permission: Permission): boolean {
  return GRANTS[role].has(permission);
}

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

/** Whether some role lacks `permission` (its routes can answer 403, and document it). */
export function someRoleLacks(permission: Permission | "public"): boolean {
  return permission !== "public" && ROLES.some((r) => !roleMay(r, permission));
}
