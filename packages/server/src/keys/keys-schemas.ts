import { z } from "zod";
import { instant, pageOf } from "../http/error-schemas.js";

export const RateLimitSchema = z.object({ limit: z.number().int(), window_s: z.number().int() });
export const QuotaSchema = z.object({ limit: z.number().int(), period: z.enum(["day", "month", "total"]) });

/** The public shape of a key: never its hash, never its secret (keys-routes.ts builds it). */
export const KeySchema = z
  .object({
    id: z.string(),
    prefix: z.string(),
    owner: z.string(),
    name: z.string().nullable(),
    scopes: z.array(z.string()),
    status: z.enum(["active", "revoked", "frozen", "expired"]),
    expires_at: instant.nullable(),
    rate_limit: RateLimitSchema.nullable(),
    quota: QuotaSchema.nullable(),
    ip_allow: z.array(z.string()).nullable(),
    /** Set on a key replaced by rotation: the id of its successor. */
    rotated_to: z.string().nullable(),
    created_at: instant,
    updated_at: instant,
    revoked_at: instant.nullable(),
    last_used_at: instant.nullable(),
    /** A canary key: never usable, any use raises a critical alert (SPEC §10). */
    canary: z.boolean(),
  })
  .meta({ id: "Key" });
export const KeyPageSchema = pageOf(KeySchema);

/** A new key and its secret, shown this once. */
export const IssuedKeySchema = z.object({ key: KeySchema, secret: z.string() });
/** A rotation: the new key, its secret, and the key it replaces (`rotated_to` names the new one). */
export const RotatedKeySchema = IssuedKeySchema.extend({ previous: KeySchema });

export type Key = z.infer<typeof KeySchema>;
export type IssuedKey = z.infer<typeof IssuedKeySchema>;
export type RotatedKey = z.infer<typeof RotatedKeySchema>;
