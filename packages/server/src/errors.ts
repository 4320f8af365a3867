/**
 * The closed set of error codes Keyward answers with, and their HTTP statuses.
 * Every error body is `{error: {code, message, request_id}}` (SPEC §4).
 */
export const ERROR_STATUS = {
  missing_credentials: 401,
  invalid_key: 401,
  key_expired: 401,
  key_revoked: 401,
  key_frozen: 401,
  invalid_token: 401,
  token_expired: 401,
  unauthorized: 401,
  scope_denied: 403,
  ip_denied: 403,
  forbidden: 403,
  credential_not_granted: 403,
  agent_not_found: 404,
  not_found: 404,
  credential_not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  invalid_request: 400,
  egress_not_configured: 400,
  rate_limited: 429,
  quota_exceeded: 429,
  internal_error: 500,
  upstream_unavailable: 502,
  store_unavailable: 503,
  audit_unavailable: 503,
  /** Redis (shared rate limits and quotas) unreachable, `rate_limit_fallback: closed`. */
  rate_limit_unavailable: 503,
  credential_unavailable: 503,
  upstream_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export function codeToStatus(code: ErrorCode): number {
  return ERROR_STATUS[code];
}

/** A failure with a stable code. Messages must never contain secret material. */
export class KeywardError extends Error {
  readonly code: ErrorCode;
  readonly headers: Record<string, string> | undefined;
  constructor(code: ErrorCode, message: string, headers?: Record<string, string>) {
    super(message);
    this.name = "KeywardError";
    this.code = code;
    this.headers = headers;
  }
}

export const notFound = (what: string): KeywardError => new KeywardError("not_found", `${what} not found`);
export const conflict = (what: string): KeywardError => new KeywardError("conflict", `${what} already exists`);
export const invalidRequest = (message: string): KeywardError => new KeywardError("invalid_request", message);
