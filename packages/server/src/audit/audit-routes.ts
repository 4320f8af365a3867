import { z } from "zod";
import { invalidRequest } from "../errors.js";
import { parseWith } from "../http/body.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, errors, json } from "../openapi/operation.js";
import type { AuditCheckpoint, SignedCheckpoint } from "./audit-checkpoints.js";
import type { AuditLog } from "./audit-log.js";
import { AuditPageSchema, AuditVerifySchema } from "./audit-schemas.js";

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

// A checkpoint as emitted by audit-checkpoints.ts: both parts or neither; `checkpoint_mac`, when
// given, must be Keyward's, so a mistyped or made-up checkpoint is refused instead of judged against.
const verifyQuery = z
  .strictObject({
    checkpoint_seq: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    checkpoint_head: z
      .string()
      .regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex characters")
      .optional(),
    checkpoint_mac: z
      .string()
      .regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex characters")
      .optional(),
  })
  .refine((q) => (q.checkpoint_seq === undefined) === (q.checkpoint_head === undefined), {
    message: "checkpoint_seq and checkpoint_head go together",
    path: ["checkpoint_seq"],
  })
  .refine((q) => q.checkpoint_mac === undefined || q.checkpoint_seq !== undefined, {
    message: "checkpoint_mac needs checkpoint_seq and checkpoint_head",
    path: ["checkpoint_mac"],
  });

/** GET /admin/v1/audit and /admin/v1/audit/verify (SPEC §3). */
export function registerAuditRoutes(
  router: Router,
  deps: {
    audit: AuditLog;
    requireAdmin: (ctx: RequestContext) => Promise<string>;
    /** Checks a checkpoint's MAC (audit-checkpoints.ts); without it a given mac is refused. */
    checkpointMacValid?: (c: SignedCheckpoint) => boolean;
  },
): void {
  router.get(
    "/admin/v1/audit",
    {
      operationId: "listAuditEvents",
      summary: "Audit events, oldest first",
      auth: ADMIN,
      tag: "audit",
      query: listQuery,
      responses: { 200: json(AuditPageSchema, "A page of events"), ...errors(400, 401) },
    },
    async (ctx) => {
      await deps.requireAdmin(ctx);
      const q = parseWith(listQuery, Object.fromEntries(ctx.query), "query");
      const page = await deps.audit.list(q);
      sendJson(ctx.res, 200, { events: page.events, next_cursor: page.next_cursor }, { "x-request-id": ctx.requestId });
    },
  );

  router.get(
    "/admin/v1/audit/verify",
    {
      operationId: "verifyAudit",
      summary: "Check the audit log's hash chain",
      auth: ADMIN,
      tag: "audit",
      query: verifyQuery,
      responses: { 200: json(AuditVerifySchema, "Whether the chain is intact"), ...errors(400, 401) },
    },
    async (ctx) => {
      await deps.requireAdmin(ctx);
      const q = parseWith(verifyQuery, Object.fromEntries(ctx.query), "query");
      let checkpoint: AuditCheckpoint | undefined;
      if (q.checkpoint_seq !== undefined && q.checkpoint_head !== undefined) {
        checkpoint = { seq: q.checkpoint_seq, head: q.checkpoint_head };
        if (q.checkpoint_mac !== undefined && !deps.checkpointMacValid?.({ ...checkpoint, mac: q.checkpoint_mac })) {
          throw invalidRequest("checkpoint_mac is not a checkpoint this Keyward signed");
        }
      }
      const v = await deps.audit.verify(checkpoint);
      // Picked field by field, like every response.
      const body = v.ok
        ? { ok: true, count: v.count, head: v.head }
        : {
            ok: false,
            reason: v.reason,
            first_broken_seq: v.first_broken_seq,
            count: v.count,
            ...(v.anchor !== undefined ? { anchor: v.anchor } : {}),
          };
      sendJson(ctx.res, 200, body, { "x-request-id": ctx.requestId });
    },
  );
}
