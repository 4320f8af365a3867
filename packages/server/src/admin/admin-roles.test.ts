import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdminIdentity, call, createAdmin } from "../../test-support/admin-identities.js";
import { type Place, placeEngines } from "../../test-support/database-places.js";
import type { TestServer } from "../../test-support/server.js";
import { ADMIN_POLICY, ROLES, type Role } from "./admin-roles.js";

/**
 * Each role against a table of representative admin operations, through a running Keyward: what a
 * role may do answers 2xx, what it may not answers 403 `forbidden` (never 500), on both engines.
 */

interface Op {
  method: string;
  path: (role: string) => string;
  body?: (role: string) => unknown;
  allowed: readonly Role[];
}

const ALL = ROLES;
const READERS: readonly Role[] = ["owner", "operator", "viewer"];
const CHANGERS: readonly Role[] = ["owner", "operator"];
const OWNERS: readonly Role[] = ["owner"];

const OPS: readonly Op[] = [
  { method: "GET", path: () => "/admin/v1/consumers", allowed: READERS },
  { method: "GET", path: () => "/admin/v1/agents", allowed: READERS },
  { method: "GET", path: () => "/admin/v1/keys?owner=consumer:acme", allowed: READERS },
  { method: "GET", path: () => "/admin/v1/credentials", allowed: READERS },
  { method: "GET", path: () => "/admin/v1/alerts", allowed: READERS },
  { method: "GET", path: () => "/admin/v1/master-key", allowed: READERS },
  { method: "GET", path: () => "/admin/v1/audit", allowed: ALL },
  { method: "GET", path: () => "/admin/v1/audit/verify", allowed: ALL },
  { method: "GET", path: () => "/admin/v1/usage?group_by=key", allowed: ALL },
  { method: "POST", path: () => "/admin/v1/consumers", body: (r) => ({ name: `c-${r}` }), allowed: CHANGERS },
  {
    method: "POST",
    path: () => "/admin/v1/keys",
    body: () => ({ owner: "consumer:acme", scopes: [] }),
    allowed: CHANGERS,
  },
  {
    method: "PUT",
    path: (r) => `/admin/v1/credentials/cred-${r}`,
    body: () => ({ value: "s3cret" }),
    allowed: CHANGERS,
  },
  { method: "DELETE", path: () => "/admin/v1/consumers/doomed", allowed: CHANGERS },
  { method: "GET", path: () => "/admin/v1/admin-tokens", allowed: OWNERS },
  {
    method: "POST",
    path: () => "/admin/v1/admin-tokens",
    body: (r) => ({ name: `by-${r}`, role: "viewer" }),
    allowed: OWNERS,
  },
  { method: "POST", path: () => "/admin/v1/signing-keys/rotate", allowed: OWNERS },
];

describe.each(placeEngines("admin roles"))("admin roles on $name", ({ skip, place }) => {
  let p: Place | undefined;
  let kw: TestServer;
  const admins = {} as Record<Role, AdminIdentity>;

  beforeAll(async () => {
    if (skip) return;
    p = place();
    kw = await p.start();
    for (const role of ROLES) admins[role] = await createAdmin(kw, `the-${role}`, role);
    expect((await kw.admin("POST", "/consumers", { name: "acme" })).status).toBe(201);
  });
  afterAll(async () => {
    await kw?.close();
    await p?.cleanup();
  });

  for (const op of OPS) {
    it.skipIf(skip)(`${op.method} ${op.path("role")}: ${op.allowed.join(", ")} only`, async () => {
      for (const role of ROLES) {
        // What a DELETE removes is made afresh for each role, by the bootstrap owner.
        if (op.method === "DELETE") await kw.admin("POST", "/consumers", { name: "doomed" });
        const res = await call(kw.url, op.method, op.path(role), {
          bearer: admins[role].secret,
          ...(op.body ? { body: op.body(role) } : {}),
        });
        if (op.allowed.includes(role)) {
          expect(res.status, `${role}: ${JSON.stringify(res.body)}`).toBeGreaterThanOrEqual(200);
          expect(res.status, `${role}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
        } else {
          expect(res.status, role).toBe(403);
          expect(res.body.error.code).toBe("forbidden");
          expect(res.body.error.request_id).toEqual(expect.any(String));
        }
      }
    });
  }

  it.skipIf(skip)("a refused change changed nothing", async () => {
    await call(kw.url, "POST", "/admin/v1/consumers", { bearer: admins.viewer.secret, body: { name: "by-viewer" } });
    expect((await kw.admin("GET", "/consumers/by-viewer")).status).toBe(404);
  });

  it.skipIf(skip)("audit records of admin changes name the admin identity as admin:<id>", async () => {
    const res = await call(kw.url, "POST", "/admin/v1/consumers", {
      bearer: admins.operator.secret,
      body: { name: "audited" },
    });
    expect(res.status).toBe(201);
    const audit = await call(kw.url, "GET", "/admin/v1/audit?action=consumer.create&principal=consumer:audited", {
      bearer: admins.auditor.secret,
    });
    expect(audit.body.events.map((e: { actor: string }) => e.actor)).toEqual([`admin:${admins.operator.id}`]);
    const made = await call(
      kw.url,
      "GET",
      `/admin/v1/audit?action=admin_token.created&principal=admin:${admins.viewer.id}`,
      {
        bearer: admins.auditor.secret,
      },
    );
    expect(made.body.events).toHaveLength(1);
    expect(made.body.events[0].actor).toBe("admin:adm_bootstrap");
    expect(made.body.events[0].details).toEqual({ name: "the-viewer", role: "viewer" });
  });

  it.skipIf(skip)("the last active owner cannot be revoked; another owner can", async () => {
    const revoke = (id: string, by: string) =>
      call(kw.url, "POST", `/admin/v1/admin-tokens/${id}/revoke`, { bearer: by });
    expect((await revoke(admins.owner.id, kw.adminToken)).status).toBe(200);
    expect((await call(kw.url, "GET", "/admin/v1/consumers", { bearer: admins.owner.secret })).status).toBe(401);
    const last = await revoke("adm_bootstrap", kw.adminToken);
    expect(last.status).toBe(409);
    expect(last.body.error.code).toBe("conflict");
    expect(last.body.error.message).toMatch(/last active owner/);
    expect((await revoke("adm_nobody", kw.adminToken)).status).toBe(404);
    const list = await call(kw.url, "GET", "/admin/v1/admin-tokens", { bearer: kw.adminToken });
    const byId = new Map(list.body.items.map((t: { id: string; status: string }) => [t.id, t.status]));
    expect(byId.get(admins.owner.id)).toBe("revoked");
    expect(byId.get("adm_bootstrap")).toBe("active");
  });
});

describe("the policy covers the admin API", () => {
  let kw: TestServer | undefined;
  afterAll(() => kw?.close());

  it("every /admin/v1 operation of /openapi.json has a declared permission", async () => {
    const { startTestServer } = await import("../../test-support/server.js");
    kw = await startTestServer();
    const doc = (await (await fetch(`${kw.url}/openapi.json`)).json()) as { paths: Record<string, object> };
    const operations = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith("/admin/v1/"))
      .flatMap(([path, ops]) =>
        Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ":$1")}`),
      );
    expect(operations.length).toBeGreaterThan(40);
    expect(operations.filter((op) => ADMIN_POLICY[op] === undefined)).toEqual([]);
    // And the policy names no route that does not exist (a renamed route would leave a stale entry).
    expect(Object.keys(ADMIN_POLICY).filter((op) => !operations.includes(op))).toEqual([]);
  });
});
