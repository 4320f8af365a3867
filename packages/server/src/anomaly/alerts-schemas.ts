import { z } from "zod";
import { instant, pageOf } from "../http/error-schemas.js";

export const AlertSeveritySchema = z.enum(["info", "warning", "critical"]);
export const AlertStatusSchema = z.enum(["open", "acked"]);

/** An alert as the admin API shows it (SPEC §10); alerts-routes.ts builds it field by field. */
export const AlertSchema = z
  .object({
    id: z.string(),
    rule: z.string(),
    severity: AlertSeveritySchema,
    status: AlertStatusSchema,
    /** Absent when the alert is about no one key. */
    key_id: z.string().optional(),
    created_at: instant,
    /** Counts, addresses, window, and `would_freeze` for a dry run: ids and names, never a secret. */
    evidence: z.record(z.string(), z.unknown()),
  })
  .meta({ id: "Alert" });
export const AlertPageSchema = pageOf(AlertSchema);

export type AlertView = z.infer<typeof AlertSchema>;
export type AlertPage = z.infer<typeof AlertPageSchema>;
