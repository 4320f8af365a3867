import { z } from "zod";
import { instant, pageOf } from "../http/error-schemas.js";

/** A per-user credential as written: names and versions, never a value. */
export const UserCredentialWrittenSchema = z
  .object({ user: z.string(), name: z.string(), version: z.number().int(), updated_at: instant })
  .meta({ id: "UserCredentialWritten" });
export const UserCredentialSchema = z
  .object({ name: z.string(), version: z.number().int(), updated_at: instant })
  .meta({ id: "UserCredential" });
export const UserCredentialPageSchema = pageOf(UserCredentialSchema);
export const UserPageSchema = pageOf(z.object({ user: z.string(), credentials: z.array(UserCredentialSchema) }));

/** `POST /v1/tools/credentials`: all the names asked for, or an error. */
export const ToolCredentialsSchema = z.object({ credentials: z.record(z.string(), z.string()) });
export const AuditEventRecordedSchema = z.object({ recorded: z.literal(true) });

export type UserCredentialWritten = z.infer<typeof UserCredentialWrittenSchema>;
export type UserCredential = z.infer<typeof UserCredentialSchema>;
export type UserListed = z.infer<typeof UserPageSchema>["items"][number];
