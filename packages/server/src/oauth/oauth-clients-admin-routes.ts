import { z } from "zod";
import type { Actor } from "../admin/admin-context.js";
import type { AuditSink } from "../audit/audit-sink.js";
import { KeywardError } from "../errors.js";
import { iso, pageResult, pageSchema, parsePage } from "../http/paging.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, empty, errors, json } from "../openapi/operation.js";
import type { Db } from "../store/db.js";
import { createRefreshTokensStore } from "../tokens/refresh-tokens-store.js";
import type { OAuthClientRow, OAuthClientsStore } from "./oauth-clients-store.js";

const OAuthClientSchema = z
  .object({
    client_id: z.string(),
    client_name: z.string().nullable(),
    redirect_uris: z.array(z.string()),
    token_endpoint_auth_method: z.string(),
    grant_types: z.array(z.string()),
    created_at: z.string(),
    last_used_at: z.string(),
  })
  .meta({ id: "OAuthClient" });
const OAuthClientPageSchema = z.object({ items: z.array(OAuthClientSchema), next_cursor: z.string().nullable() });

/** Picked field by field: the secret's hash never leaves the store. */
function clientView(c: OAuthClientRow): z.infer<typeof OAuthClientSchema> {
  return {
    client_id: c.id,
    client_name: c.name,
    redirect_uris: c.redirect_uris,
    token_endpoint_auth_method: c.auth_method,
    grant_types: c.grant_types,
    created_at: iso(c.created_at),
    last_used_at: iso(c.last_used_at),
  };
}

/**
 * `GET /admin/v1/oauth-clients`, `DELETE /admin/v1/oauth-clients/{id}`: what MCP clients registered
 * (RFC 7591), and their removal. Removing a client revokes its refresh tokens at once (their next
 * refresh is refused anyway once the client is gone); its access tokens end at their expiry.
 */
export function registerOAuthClientsAdminRoutes(
  router: Router,
  deps: {
    db: Db;
    store: OAuthClientsStore;
    audit: AuditSink;
    now: () => number;
    requireAdmin: (ctx: RequestContext) => Promise<Actor>;
  },
): void {
  const refresh = createRefreshTokensStore(deps.db);
  router.get(
    "/admin/v1/oauth-clients",
    {
      operationId: "listOAuthClients",
      summary: "List the OAuth clients MCP clients registered (RFC 7591)",
      tag: "oauth",
      auth: ADMIN,
      query: pageSchema,
      responses: { 200: json(OAuthClientPageSchema, "A page of registered clients"), ...errors(400, 401) },
    },
    async (ctx) => {
      await deps.requireAdmin(ctx);
      const page = parsePage(ctx.query);
      const result = pageResult(await deps.store.list(page.after, page.limit), page.limit, (c) => c.id);
      sendJson(ctx.res, 200, { items: result.items.map(clientView), next_cursor: result.next_cursor });
    },
  );
  router.delete(
    "/admin/v1/oauth-clients/:id",
    {
      operationId: "deleteOAuthClient",
      summary: "Remove a registered OAuth client; its refresh tokens are revoked",
      tag: "oauth",
      auth: ADMIN,
      params: { id: "The client_id (oac_…)" },
      responses: { 204: empty("Removed"), ...errors(401, 404) },
    },
    async (ctx) => {
      const actor = await deps.requireAdmin(ctx);
      const id = ctx.params.id as string;
      const removed = await deps.db.transaction(async (tx) => {
        if (!(await deps.store.remove(tx, id))) return false;
        const revoked = await refresh.revokeForKey(tx, id, deps.now());
        await deps.audit.recordIn(tx, {
          actor: actor.principal,
          action: "oauth.client_delete",
          target: id,
          outcome: "success",
          ...(actor.ip !== undefined ? { ip: actor.ip } : {}),
          ...(actor.requestId !== undefined ? { requestId: actor.requestId } : {}),
          details: { refresh_tokens_revoked: revoked },
        });
        return true;
      });
      // The id is not echoed: an unknown one may be anything a caller typed.
      if (!removed) throw new KeywardError("not_found", "no such OAuth client");
      ctx.res.writeHead(204).end();
    },
  );
}
