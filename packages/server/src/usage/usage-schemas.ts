import { z } from "zod";
import { instant } from "../http/error-schemas.js";

// Imports only zod (and the shared error schemas): the CLI infers its view of responses from here.

const time = z.iso.datetime({ offset: true, error: "must be an RFC 3339 time like 2026-01-01T00:00:00Z" });

/** `GET /admin/v1/keys/{id}/usage`'s query. */
export const SeriesQuerySchema = z.strictObject({
  step: z.enum(["1m", "1h", "1d"], { error: "must be 1m, 1h or 1d" }).default("1h"),
  from: time
    .optional()
    .describe("Start (inclusive, rounded down to the step); default: 60, 24 or 30 buckets before to"),
  to: time.optional().describe("End (exclusive, rounded up to the step); default: now"),
});

/** `GET /admin/v1/usage`'s query. */
export const TopQuerySchema = z.strictObject({
  group_by: z.enum(["key", "agent", "consumer"], { error: "must be key, agent or consumer" }).default("key"),
  top: z.coerce.number().int().min(1).max(1000).default(10),
  from: time.optional().describe("Start (inclusive, rounded down to the minute); default: 24 hours before to"),
  to: time.optional().describe("End (exclusive, rounded up to the minute); default: now"),
});

export const UsageBucketSchema = z
  .object({
    /** The bucket's start. */
    t: instant,
    allowed: z.number().int(),
    /** Denied requests by error code; codes with none are absent. */
    denied: z.record(z.string(), z.number().int()),
  })
  .meta({ id: "UsageBucket" });
export const KeyUsageSchema = z.object({ items: z.array(UsageBucketSchema) });

export const UsageGroupSchema = z
  .object({
    /** The key id, the agent's name, or the owner (`consumer:<name>`, `agent:<name>`, `user:<id>`). */
    id: z.string(),
    allowed: z.number().int(),
    denied: z.number().int(),
    denied_by_code: z.record(z.string(), z.number().int()),
  })
  .meta({ id: "UsageGroup" });
export const UsageTopSchema = z.object({
  group_by: z.enum(["key", "agent", "consumer"]),
  from: instant,
  to: instant,
  items: z.array(UsageGroupSchema),
});

export const KeyAddressSchema = z
  .object({ ip: z.string(), first_seen: instant, last_seen: instant, count: z.number().int() })
  .meta({ id: "KeyAddress" });
export const KeyAddressesSchema = z.object({ items: z.array(KeyAddressSchema) });

export type KeyUsage = z.infer<typeof KeyUsageSchema>;
export type UsageTop = z.infer<typeof UsageTopSchema>;
export type KeyAddresses = z.infer<typeof KeyAddressesSchema>;
