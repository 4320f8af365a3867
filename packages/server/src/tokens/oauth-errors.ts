import type { ServerResponse } from "node:http";

/** RFC 6749 §5.2 error codes, plus RFC 8693's `invalid_target`. */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "unsupported_token_type"
  | "invalid_scope"
  | "invalid_target";

const STATUS: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  unsupported_token_type: 400,
  invalid_scope: 400,
  invalid_target: 400,
};

/** A refusal at the OAuth endpoints, answered as `{error, error_description}`. Never carries a secret. */
export class OAuthError extends Error {
  readonly error: OAuthErrorCode;
  readonly status: number;
  /** Response headers of this refusal (a rate limit's `Retry-After`). */
  readonly headers: Record<string, string>;
  /** `status` overrides the code's own: RFC 6749 has no rate-limit code, so that is a 429. */
  constructor(
    error: OAuthErrorCode,
    description: string,
    opts: { status?: number; headers?: Record<string, string> } = {},
  ) {
    super(description);
    this.name = "OAuthError";
    this.error = error;
    this.status = opts.status ?? STATUS[error];
    this.headers = opts.headers ?? {};
  }
}

export function sendOAuthJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    // RFC 6749 §5.1: token responses must not be cached.
    "cache-control": "no-store",
    pragma: "no-cache",
    ...headers,
  });
  res.end(text);
}

export function sendOAuthError(res: ServerResponse, err: OAuthError, basicAuthTried: boolean): void {
  // RFC 6749 §5.2: a failed HTTP Basic client authentication answers 401 with a challenge.
  const headers: Record<string, string> =
    err.error === "invalid_client" ? { "www-authenticate": basicAuthTried ? 'Basic realm="keyward"' : "Bearer" } : {};
  sendOAuthJson(res, err.status, { error: err.error, error_description: err.message }, { ...err.headers, ...headers });
}
