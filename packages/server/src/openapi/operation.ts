import type { z } from "zod";

/**
 * How a route describes itself for `/openapi.json`. The route passes this next to its handler
 * (`router.post(path, operation, handler)`), naming the zod schemas it validates with and the
 * schemas its responses are built to, so the document is generated from what the code uses.
 */
export type SecurityName = "admin_token" | "api_key" | "api_key_header" | "access_token";

/** Who may call: the named security schemes (any one of them), or nobody in particular. */
export type Auth = readonly SecurityName[] | "public";

export const ADMIN: Auth = ["admin_token"];
/** Keyward's own endpoints for agents and users: a key (either header) or an access token. */
export const CALLER: Auth = ["api_key", "api_key_header", "access_token"];

export interface ResponseDoc {
  description: string;
  /** The body: a zod schema (JSON), or none (204, an empty 200). */
  schema?: z.ZodType;
  /** `error`: the `{error: {code, message, request_id}}` body; `oauth`: RFC 6749's. */
  body?: "error" | "oauth_error";
  /** Defaults to application/json when there is a schema or an error body. */
  contentType?: string;
}

export interface OperationDoc {
  /** Unique across the document; the name clients generate their methods from. */
  operationId: string;
  summary: string;
  tag: string;
  auth: Auth;
  /** The request body's schema: the very one the route parses with. */
  body?: z.ZodType;
  /** Media types the body may come in (default JSON only). */
  bodyTypes?: readonly string[];
  /** The query's schema (an object schema); each property is one parameter. */
  query?: z.ZodType;
  /** Descriptions of the path's `:params` (each is a string). */
  params?: Readonly<Record<string, string>>;
  responses: Readonly<Record<number, ResponseDoc>>;
}

/** A documented operation, as the router keeps it. */
export interface DocumentedRoute {
  method: string;
  /** The router's pattern, `:name` segments and all. */
  pattern: string;
  doc: OperationDoc;
}

export const json = (schema: z.ZodType, description: string): ResponseDoc => ({ description, schema });
export const empty = (description: string): ResponseDoc => ({ description });

const ERROR_MEANING: Readonly<Record<number, string>> = {
  400: "invalid_request: malformed JSON or an invalid field",
  401: "no valid credential (missing_credentials, invalid_key, key_revoked, invalid_token, …)",
  403: "the credential may not do this (scope_denied, forbidden, credential_not_granted, …)",
  404: "no such resource (not_found, credential_not_found, …)",
  409: "conflict: it already exists",
};

/** Error responses in the one error body, by status: `...errors(400, 401, 404)`. */
export function errors(...statuses: number[]): Record<number, ResponseDoc> {
  const out: Record<number, ResponseDoc> = {};
  for (const s of statuses) out[s] = { description: ERROR_MEANING[s] ?? "error", body: "error" };
  return out;
}

/** Error responses in RFC 6749's body (the /oauth/* and /v1/auth/token endpoints). */
export function oauthErrors(described: Readonly<Record<number, string>>): Record<number, ResponseDoc> {
  const out: Record<number, ResponseDoc> = {};
  for (const [s, description] of Object.entries(described)) out[Number(s)] = { description, body: "oauth_error" };
  return out;
}
