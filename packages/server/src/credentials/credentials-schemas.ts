import { z } from "zod";
import { instant, pageOf } from "../http/error-schemas.js";

const VersionSchema = z.object({
  version: z.number().int(),
  source: z.string(),
  rolled_back_from: z.number().int().nullable(),
  expires_at: instant.nullable(),
  created_at: instant,
  created_by: z.string(),
});

/** The admin view of a credential: metadata only, never a value or a client secret. */
export const CredentialSchema = z
  .object({
    name: z.string(),
    type: z.enum(["static", "oauth2_client_credentials"]),
    version: z.number().int().nullable(),
    egress: z.object({ base_url: z.string(), header: z.string(), format: z.string() }).nullable(),
    provider: z.object({ token_url: z.string(), client_id: z.string(), scope: z.string().nullable() }).nullable(),
    status: z.enum(["ok", "pending", "error", "deleted"]),
    status_message: z.string().nullable(),
    status_at: instant.nullable(),
    expires_at: instant.nullable(),
    created_at: instant,
    updated_at: instant,
  })
  .meta({ id: "Credential" });
export const CredentialPageSchema = pageOf(CredentialSchema);
/** One credential with its versions (newest first). */
export const CredentialDetailSchema = CredentialSchema.extend({ versions: z.array(VersionSchema) }).meta({
  id: "CredentialDetail",
});

export const GrantsSchema = z
  .object({
    agent: z.string(),
    credentials: z.array(z.object({ name: z.string(), mode: z.enum(["read", "inject"]) })),
    user_credentials: z.array(z.string()),
    may_call: z.array(z.string()),
  })
  .meta({ id: "Grants" });

/** `GET /v1/credentials` (SPEC §6): the values granted in `read` mode, or what changed since a cursor. */
export const AgentCredentialsSchema = z.object({
  credentials: z.record(
    z.string(),
    z.object({ value: z.string(), version: z.number().int(), expires_at: instant.optional() }),
  ),
  removed: z.array(z.string()),
  cursor: z.string(),
});

export type Credential = z.infer<typeof CredentialSchema>;
export type CredentialDetail = z.infer<typeof CredentialDetailSchema>;
export type Grants = z.infer<typeof GrantsSchema>;
