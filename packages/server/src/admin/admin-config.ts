import { z } from "zod";

/**
 * `admin_sessions:` in the config file: the console's session lifetimes and the sign-in bounds.
 * An idle session ends after `idle_timeout_s` without a request; any session after `absolute_timeout_s`.
 */
export const adminSessionsSchema = z
  .object({
    idle_timeout_s: z.coerce.number().int().min(60).max(86_400).default(1800),
    absolute_timeout_s: z.coerce.number().int().min(60).max(2_592_000).default(43_200),
    sign_in_per_address_per_minute: z.coerce.number().int().min(1).max(10_000).default(10),
    sign_in_per_minute: z.coerce.number().int().min(1).max(1_000_000).default(600),
  })
  .strict()
  .refine((s) => s.absolute_timeout_s >= s.idle_timeout_s, {
    path: ["absolute_timeout_s"],
    message: "must be at least idle_timeout_s",
  });

export type AdminSessionSettings = z.infer<typeof adminSessionsSchema>;
