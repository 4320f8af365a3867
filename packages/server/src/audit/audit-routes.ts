import { z } from "zod";
import { parseWith } from "../http/body.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import type { AuditLog } from "./audit-log.js";

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** RFC 3339 or epoch milliseconds → epoch ms; undefined when it is neither. */
export function parseInstant(s: string): number | undefined {
  if (/^[0-9]{1,15}$/.test(s)) return Number(s);
  const m = RFC3339.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  // Date.parse rolls 2026-02-30 over to March; a time that names no real day is an error instead.
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d || h > 23 || mi > 59 || sec > 59) return undefined;
  const ms = Date.parse(s.toUpperCase());
  return Number.isNaN(ms) ? undefined : ms;
}

const instant = z.string().transform((s, ctx) => {
  const ms = parseInstant(s);
  if (ms === undefined) {
    ctx.addIssue({ code: "custom", message: "must be an RFC 3339 time or epoch milliseconds" });
    return z.NEVER;
  }
  return ms;
});

// Strict: a misspelt filter (`?actor=`) would otherwise silently list everything.
const listQuery = z
  .strictObject({
    since: instant.optional(),
    until: instant.optional(),
    action: z.string().min(1).max(128).optional(),
    principal: z.string().min(1).max(256).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    cursor: z.string().min(1).max(128).optional(),
  })
  .refine((q) => q.since === undefined || q.until === undefined || q.since < q.until, {
    message: "must be before until",
    path: ["since"],
  });

/** GET /admin/v1/audit and /admin/v1/audit/verify (SPEC §3). */
export function registerAuditRoutes(
  router: Router,
  deps: { audit: AuditLog; requireAdmin: (ctx: RequestContext) => Promise<string> },
): void {
  router.get("/admin/v1/audit", async (ctx) => {
    await deps.requireAdmin(ctx);
    const q = parseWith(listQuery, Object.fromEntries(ctx.query), "query");
    const page = await deps.audit.list(q);
    sendJson(ctx.res, 200, { events: page.events, next_cursor: page.next_cursor }, { "x-request-id": ctx.requestId });
  });

  router.get("/admin/v1/audit/verify", async (ctx) => {
    await deps.requireAdmin(ctx);
    const v = await deps.audit.verify();
    const body = v.ok
      ? { ok: true, count: v.count, head: v.head }
      : { ok: false, first_broken_seq: v.first_broken_seq, count: v.count };
    sendJson(ctx.res, 200, body, { "x-request-id": ctx.requestId });
  });
}
