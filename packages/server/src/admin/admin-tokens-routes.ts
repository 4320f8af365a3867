import { readJson } from "../http/body.js";
import { iso, pageResult, pageSchema, parsePage } from "../http/paging.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, errors, json } from "../openapi/operation.js";
import type { Actor } from "./admin-context.js";
import {
  AdminTokenCreatedSchema,
  AdminTokenPageSchema,
  AdminTokenSchema,
  type AdminTokenView,
  CreateAdminTokenSchema,
} from "./admin-schemas.js";
import type { AdminTokenRow } from "./admin-store.js";
import type { AdminTokensService } from "./admin-tokens-service.js";

export function adminTokenView(t: AdminTokenRow): AdminTokenView {
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    status: t.revoked_at === null ? "active" : "revoked",
    created_at: iso(t.created_at),
    revoked_at: iso(t.revoked_at),
  };
}

/** `/admin/v1/admin-tokens` (SPEC §11); who may call them is admin-roles.ts's business (owners). */
export function registerAdminTokenRoutes(
  router: Router,
  deps: { tokens: AdminTokensService; requireAdmin: (ctx: RequestContext) => Promise<Actor> },
): void {
  const { tokens, requireAdmin } = deps;
  router.post(
    "/admin/v1/admin-tokens",
    {
      operationId: "createAdminToken",
      summary: "Create a named admin token with a role (its secret is shown once)",
      tag: "admin",
      auth: ADMIN,
      body: CreateAdminTokenSchema,
      responses: { 201: json(AdminTokenCreatedSchema, "The admin token and its secret"), ...errors(400, 401, 403) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      const body = await readJson(ctx.req, CreateAdminTokenSchema);
      const { token, secret } = await tokens.create(actor, body);
      sendJson(ctx.res, 201, { admin_token: adminTokenView(token), secret });
    },
  );
  router.get(
    "/admin/v1/admin-tokens",
    {
      operationId: "listAdminTokens",
      summary: "List admin tokens (never their secrets)",
      tag: "admin",
      auth: ADMIN,
      query: pageSchema,
      responses: { 200: json(AdminTokenPageSchema, "A page of admin tokens"), ...errors(400, 401, 403) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      const page = parsePage(ctx.query);
      const result = pageResult(await tokens.list(page.after, page.limit), page.limit, (t) => t.id);
      sendJson(ctx.res, 200, { items: result.items.map(adminTokenView), next_cursor: result.next_cursor });
    },
  );
  router.post(
    "/admin/v1/admin-tokens/:id/revoke",
    {
      operationId: "revokeAdminToken",
      summary: "Revoke an admin token and end its console sessions (409 for the last active owner)",
      tag: "admin",
      auth: ADMIN,
      params: { id: "The admin token's id (adm_…)" },
      responses: {
        200: json(AdminTokenSchema, "The revoked admin token"),
        ...errors(401, 403, 404),
        409: { description: "conflict: the last active owner token cannot be revoked", body: "error" },
      },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      sendJson(ctx.res, 200, adminTokenView(await tokens.revoke(actor, ctx.params.id ?? "")));
    },
  );
}
