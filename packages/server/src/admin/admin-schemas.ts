import { z } from "zod";
import { instant, pageOf } from "../http/error-schemas.js";
import { ROLES } from "./admin-roles.js";

/** A name shown in lists and audit details: printable, bounded. */
const tokenName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[^\p{Cc}\u2028\u2029]+$/u, "must not contain control characters");

export const CreateAdminTokenSchema = z.strictObject({ name: tokenName, role: z.enum(ROLES) });
/** The admin token to exchange for a console session; its length is bounded before it is hashed. */
export const SignInSchema = z.strictObject({ token: z.string().min(1).max(512) });

/** The public shape of an admin token: never its secret or hash (admin-tokens-routes.ts picks the fields). */
export const AdminTokenSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.enum(ROLES),
    status: z.enum(["active", "revoked"]),
    created_at: instant,
    revoked_at: instant.nullable(),
  })
  .meta({ id: "AdminToken" });
export const AdminTokenPageSchema = pageOf(AdminTokenSchema);
export const AdminTokenCreatedSchema = z
  .object({ admin_token: AdminTokenSchema, secret: z.string().describe("`kwa_…`, shown once") })
  .meta({ id: "AdminTokenCreated" });

export const SessionSchema = z
  .object({
    admin_token: z.object({ id: z.string(), name: z.string(), role: z.enum(ROLES) }),
    csrf_token: z.string().describe("Send as X-CSRF-Token with every change made with the session cookie"),
    expires_at: instant.describe("Absolute expiry; the session also ends after idle_timeout_s without a request"),
    idle_timeout_s: z.number().int(),
  })
  .meta({ id: "AdminSession" });

export type AdminTokenView = z.infer<typeof AdminTokenSchema>;
