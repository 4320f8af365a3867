import { z } from "zod";
import { instant } from "../http/error-schemas.js";

export const AuditEventSchema = z
  .object({
    seq: z.number().int(),
    time: instant,
    actor: z.string(),
    action: z.string(),
    target: z.string().optional(),
    outcome: z.enum(["success", "denied", "failure"]),
    code: z.string().optional(),
    ip: z.string().optional(),
    request_id: z.string().optional(),
    details: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: "AuditEvent" });
export const AuditPageSchema = z.object({ events: z.array(AuditEventSchema), next_cursor: z.string().nullable() });

/** `{ok, count, head}`, or where and how the chain was found altered. */
export const AuditVerifySchema = z.union([
  z.object({ ok: z.literal(true), count: z.number().int(), head: z.string() }),
  z.object({
    ok: z.literal(false),
    reason: z.enum(["altered", "truncated", "rolled_back"]),
    first_broken_seq: z.number().int(),
    count: z.number().int(),
    anchor: z.enum(["process", "checkpoint", "keyed_from"]).optional(),
  }),
]);

export type AuditEvent = z.infer<typeof AuditEventSchema>;
export type AuditPage = z.infer<typeof AuditPageSchema>;
