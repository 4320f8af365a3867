import type { Actor } from "../admin/admin-context.js";
import { parseWith } from "../http/body.js";
import { pageResult, pageSchema, parsePage } from "../http/paging.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, errors, json } from "../openapi/operation.js";
import { DeliveryPageSchema, DeliverySchema, DeliveryStatusSchema } from "./webhooks-schemas.js";
import { deliveryView, type WebhooksService } from "./webhooks-service.js";

const listQuery = pageSchema.extend({ status: DeliveryStatusSchema.optional() });

/** `GET /admin/v1/webhooks/deliveries` and `POST …/{id}/retry`. */
export function registerWebhookRoutes(
  router: Router,
  deps: { webhooks: WebhooksService; requireAdmin: (ctx: RequestContext) => Promise<Actor> },
): void {
  const { webhooks, requireAdmin } = deps;
  router.get(
    "/admin/v1/webhooks/deliveries",
    {
      operationId: "listWebhookDeliveries",
      summary: "List webhook deliveries, newest first (failed ones say why)",
      auth: ADMIN,
      tag: "webhooks",
      query: listQuery,
      responses: { 200: json(DeliveryPageSchema, "A page of deliveries"), ...errors(400, 401) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      const page = parsePage(ctx.query);
      const { status } = parseWith(
        listQuery.pick({ status: true }),
        { status: ctx.query.get("status") ?? undefined },
        "query",
      );
      const result = pageResult(await webhooks.list(status, page.after, page.limit), page.limit, (r) => r.id);
      sendJson(ctx.res, 200, { items: result.items.map(deliveryView), next_cursor: result.next_cursor });
    },
  );
  router.post(
    "/admin/v1/webhooks/deliveries/:id/retry",
    {
      operationId: "retryWebhookDelivery",
      summary: "Send a failed delivery again (same webhook-id, a fresh attempt budget)",
      auth: ADMIN,
      tag: "webhooks",
      responses: { 200: json(DeliverySchema, "The delivery, pending again"), ...errors(401, 404, 409) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      sendJson(ctx.res, 200, deliveryView(await webhooks.retry(actor, ctx.params.id as string)));
    },
  );
}
