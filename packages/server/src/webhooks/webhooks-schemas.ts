import { z } from "zod";
import { instant, pageOf } from "../http/error-schemas.js";

export const DeliveryStatusSchema = z.enum(["pending", "delivered", "failed"]);

/** One (event, endpoint) delivery as the admin API shows it: never the endpoint's secret, query or user info. */
export const DeliverySchema = z
  .object({
    id: z.string(),
    /** The `webhook-id` the receiver sees (the same on every attempt). */
    event_id: z.string(),
    type: z.string(),
    endpoint_url: z.string(),
    status: DeliveryStatusSchema,
    attempts: z.number().int(),
    last_error: z.string().nullable(),
    /** When the next attempt is due (pending only). */
    next_attempt_at: instant.nullable(),
    created_at: instant,
    delivered_at: instant.nullable(),
  })
  .meta({ id: "WebhookDelivery" });
export const DeliveryPageSchema = pageOf(DeliverySchema);

/** What a leak report is answered with, per reported token (never the token itself). */
export const LeakVerdictSchema = z.object({
  token_hash: z.string(),
  token_type: z.string(),
  label: z.enum(["true_positive", "false_positive"]),
});
export const LeakResponseSchema = z.array(LeakVerdictSchema);

export type Delivery = z.infer<typeof DeliverySchema>;
