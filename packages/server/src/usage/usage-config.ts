import { z } from "zod";

const days = (fallback: number) => z.coerce.number().int().min(1).max(3650).default(fallback);

/**
 * `usage:` in the config file (docs/operations.md, "Usage analytics"): how long each bucket size
 * is kept, how often counts are written, and the bounds on what one replica holds in memory.
 */
export const usageSchema = z
  .object({
    /** Off: nothing is counted (the API answers zeros); quota thresholds are still announced. */
    enabled: z.boolean().default(true),
    minute_retention_days: days(2),
    hour_retention_days: days(35),
    day_retention_days: days(400),
    /** Counts reach the store (and the API of every replica) within this. SPEC §10 asks ≤ 10 s. */
    flush_interval_ms: z.coerce.number().int().min(100).max(10_000).default(5000),
    /** Distinct source addresses remembered per key (newest first). */
    addresses_per_key: z.coerce.number().int().min(1).max(1000).default(20),
    /** Counters held between two flushes; past it new ones are dropped and the drop is logged. */
    max_counters: z.coerce.number().int().min(1000).max(10_000_000).default(200_000),
  })
  .strict()
  .refine((u) => u.minute_retention_days <= u.hour_retention_days && u.hour_retention_days <= u.day_retention_days, {
    path: ["hour_retention_days"],
    message: "retention must not shrink from minutes to hours to days (minute ≤ hour ≤ day)",
  });
export type UsageConfig = z.infer<typeof usageSchema>;
