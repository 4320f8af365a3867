import { z } from "zod";
import type { Actor } from "../admin/admin-context.js";
import { KeywardError } from "../errors.js";
import { parseWith } from "../http/body.js";
import { pageResult, pageSchema, parsePage } from "../http/paging.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, errors, json } from "../openapi/operation.js";
import type { Alert } from "./alert-types.js";
import { AlertPageSchema, AlertSchema, AlertSeveritySchema, AlertStatusSchema } from "./alerts-schemas.js";
import { type AlertsService, alertView } from "./alerts-service.js";

const listQuery = pageSchema.extend({
  status: AlertStatusSchema.optional(),
  severity: AlertSeveritySchema.optional(),
  key_id: z.string().min(1).max(128).optional(),
});

/** The cursor of a newest-first list: the last alert's time and id. */
function cursorOf(a: Alert): string {
  return `${a.createdAt}:${a.id}`;
}

function parseCursor(after: string | undefined): { createdAt: number; id: string } | undefined {
  if (after === undefined) return undefined;
  const m = /^(\d{1,16}):(.{1,128})$/s.exec(after);
  if (!m) throw new KeywardError("invalid_request", "cursor: not a cursor this list gave out");
  return { createdAt: Number(m[1]), id: m[2] as string };
}

export function registerAlertRoutes(
  router: Router,
  deps: { alerts: AlertsService; requireAdmin: (ctx: RequestContext) => Promise<Actor> },
): void {
  const { alerts, requireAdmin } = deps;
  router.get(
    "/admin/v1/alerts",
    {
      operationId: "listAlerts",
      summary: "List anomaly alerts, newest first",
      auth: ADMIN,
      tag: "alerts",
      query: listQuery,
      responses: { 200: json(AlertPageSchema, "A page of alerts"), ...errors(400, 401) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      const page = parsePage(ctx.query);
      const q = parseWith(
        listQuery.pick({ status: true, severity: true, key_id: true }),
        {
          status: ctx.query.get("status") ?? undefined,
          severity: ctx.query.get("severity") ?? undefined,
          key_id: ctx.query.get("key_id") ?? undefined,
        },
        "query",
      );
      const rows = await alerts.list(
        { status: q.status, severity: q.severity, keyId: q.key_id },
        parseCursor(page.after),
        page.limit,
      );
      const result = pageResult(rows, page.limit, cursorOf);
      sendJson(ctx.res, 200, { items: result.items.map(alertView), next_cursor: result.next_cursor });
    },
  );
  router.post(
    "/admin/v1/alerts/:id/ack",
    {
      operationId: "ackAlert",
      summary: "Acknowledge an alert",
      auth: ADMIN,
      tag: "alerts",
      responses: { 200: json(AlertSchema, "The acknowledged alert"), ...errors(401, 404) },
    },
    async (ctx) => {
      const actor = await requireAdmin(ctx);
      sendJson(ctx.res, 200, alertView(await alerts.ack(actor, ctx.params.id as string)));
    },
  );
}
