import { z } from "zod";
import { ERROR_STATUS, type ErrorCode } from "./errors.js";

// The two error bodies Keyward answers with, as schemas for the OpenAPI document (openapi/):
// Keyward's own, over the closed code union of errors.ts, and RFC 6749's at the OAuth endpoints
// (tokens/oauth-errors.ts). Beside errors.ts, below every folder that documents a route.

const CODES = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];

/** The one error body (SPEC §4), with the closed code union of errors.ts. */
export const ErrorBodySchema = z
  .object({
    error: z.object({ code: z.enum(CODES), message: z.string(), request_id: z.string() }),
  })
  .meta({ id: "Error" });

/** RFC 6749 §5.2, RFC 8707's invalid_target, and RFC 7591 §3.2.2's registration errors. */
export const OAuthErrorSchema = z
  .object({
    error: z.enum([
      "invalid_request",
      "invalid_client",
      "invalid_grant",
      "unauthorized_client",
      "unsupported_grant_type",
      "unsupported_token_type",
      "invalid_scope",
      "invalid_target",
      "invalid_redirect_uri",
      "invalid_client_metadata",
      "temporarily_unavailable",
    ]),
    error_description: z.string(),
  })
  .meta({ id: "OAuthError" });
