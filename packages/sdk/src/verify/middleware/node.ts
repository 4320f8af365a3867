import type { IncomingMessage, ServerResponse } from "node:http";
import type { VerifiedToken } from "../claims.js";
import type { Verifier } from "../verifier.js";
import { type AuthOutcome, authenticate, type MiddlewareOptions, singleHeader } from "./shared.js";

/**
 * Authentication for a plain `node:http` handler. Call it first in the handler: it resolves to the
 * verified token, or to `undefined` once it has answered the request itself — 401 `invalid_token`,
 * `token_expired` or `missing_credentials` with `WWW-Authenticate: Bearer …`, 403 `scope_denied`,
 * or 503 `jwks_unavailable` — so the handler just returns. The token is also set as
 * `req.keyward`. It rejects only on an unexpected error (a bug), never for a bad token.
 *
 * A guard you await rather than a wrapper around the handler, because node:http has no error
 * channel of its own: the handler keeps control of its errors and responses.
 *
 * @example
 * ```ts
 * import { createServer } from "node:http";
 * import { nodeMiddleware, verifier } from "@keyward/sdk";
 *
 * const auth = nodeMiddleware(verifier({ issuer: "https://keyward.internal", audience: "research" }));
 * createServer(async (req, res) => {
 *   const token = await auth(req, res);
 *   if (!token) return; // already answered 401/403
 *   res.end(`hello ${token.subject}`);
 * }).listen(3000);
 * ```
 */
export function nodeMiddleware(
  v: Verifier,
  options?: MiddlewareOptions,
): (req: IncomingMessage & { keyward?: VerifiedToken }, res: ServerResponse) => Promise<VerifiedToken | undefined> {
  return async (req, res) => {
    const outcome = await authenticate(
      v,
      singleHeader(req.headers.authorization),
      singleHeader(req.headers["x-request-id"]),
      options,
    );
    if (outcome.ok) {
      req.keyward = outcome.token;
      return outcome.token;
    }
    sendDenial(res, outcome);
    return undefined;
  };
}

/** Writes a refusal on a node:http response (Express's response is one too). */
export function sendDenial(res: ServerResponse, denial: Extract<AuthOutcome, { ok: false }>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = JSON.stringify(denial.body);
  res.writeHead(denial.status, { ...denial.headers, "content-length": Buffer.byteLength(payload) });
  res.end(payload);
}
