import { z } from "zod";

/** Bounds on a report (an outsider controls its size): bytes, entries, and each field. */
export const MAX_REPORT_BYTES = 256 * 1024;
export const MAX_REPORT_ENTRIES = 100;

/** The secret-scanning partner format: a JSON array of matches (GitHub's `token`, `type`, `url`, `source`). */
export const LeakReportSchema = z
  .array(
    z.object({
      token: z.string().min(1).max(1024),
      type: z.string().min(1).max(256),
      url: z.string().max(4096).optional(),
      source: z.string().max(256).optional(),
    }),
  )
  .min(1)
  .max(MAX_REPORT_ENTRIES);

/** One verdict per reported token, as the partner format expects it back: the token's SHA-256, never the token. */
export const LeakVerdictSchema = z.object({
  token_hash: z.string(),
  token_type: z.string(),
  label: z.enum(["true_positive", "false_positive"]),
});
export const LeakVerdictsSchema = z.array(LeakVerdictSchema);
