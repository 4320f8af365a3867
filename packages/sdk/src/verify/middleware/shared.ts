import { randomUUID } from "node:crypto";
import type { VerifiedToken } from "../claims.js";
import { JwksUnavailableError, TokenVerificationError } from "../errors.js";
import type { Verifier } from "../verifier.js";

/** Per-route settings of the middleware. */
export interface MiddlewareOptions {
  /** Scopes this route requires, all of them; replaces the verifier's `requiredScopes`. */
  requiredScopes?: readonly string[];
}

/** The SPEC §4 error body every refusal carries. */
export interface ErrorBody {
  error: { code: string; message: string; request_id: string };
}

export type AuthOutcome =
  | { ok: true; token: VerifiedToken }
  | { ok: false; status: 401 | 403 | 503; headers: Record<string, string>; body: ErrorBody };

/** A caller's request id is kept for tracing only if it is short, plain, and not a credential. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const CREDENTIAL_LIKE = /kw[kar]_|^ey[\w-]+\.ey/i;
/** RFC 6750 §3: scope tokens are printable ASCII without `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * Everything the four middlewares share: read the bearer token, verify it, check scopes, and on
 * failure build the response (status, headers, body). Token and JWKS failures become responses;
 * anything else is a bug and is rethrown to the framework's own error handling.
 */
export async function authenticate(
  v: Verifier,
  authorization: string | undefined,
  incomingRequestId: string | undefined,
  options: MiddlewareOptions | undefined,
): Promise<AuthOutcome> {
  let token: VerifiedToken;
  try {
    token = await v.verifyHeader(authorization);
  } catch (err) {
    if (err instanceof TokenVerificationError) {
      // RFC 6750 §3.1: a request with no credentials gets the challenge without an error code.
      const challenge = err.code === "missing_credentials" ? "Bearer" : 'Bearer error="invalid_token"';
      return deny(401, err.code, err.message, incomingRequestId, challenge);
    }
    if (err instanceof JwksUnavailableError) {
      return deny(503, err.code, "the token issuer's keys are unavailable; try again shortly", incomingRequestId);
    }
    throw err;
  }
  const required = options?.requiredScopes ?? v.requiredScopes;
  const missing = required.filter((s) => !token.scopes.includes(s));
  if (missing.length > 0) {
    const scope = required.filter((s) => SCOPE_TOKEN.test(s)).join(" ");
    return deny(
      403,
      "scope_denied",
      `the access token lacks the required scope${missing.length > 1 ? "s" : ""}: ${missing.join(", ")}`,
      incomingRequestId,
      `Bearer error="insufficient_scope", scope="${scope}"`,
    );
  }
  return { ok: true, token };
}

function deny(
  status: 401 | 403 | 503,
  code: string,
  message: string,
  incomingRequestId: string | undefined,
  challenge?: string,
): AuthOutcome {
  const requestId =
    incomingRequestId !== undefined && REQUEST_ID.test(incomingRequestId) && !CREDENTIAL_LIKE.test(incomingRequestId)
      ? incomingRequestId
      : randomUUID();
  const headers: Record<string, string> = {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
    "x-request-id": requestId,
  };
  if (challenge) headers["www-authenticate"] = challenge;
  return { ok: false, status, headers, body: { error: { code, message, request_id: requestId } } };
}

/** One header value from a Node-style header map (a repeated header counts as absent). */
export function singleHeader(value: string | string[] | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}
