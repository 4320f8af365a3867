import type { IncomingMessage, ServerResponse } from "node:http";
import type { VerifiedToken } from "../claims.js";
import type { Verifier } from "../verifier.js";
import { sendDenial } from "./node.js";
import { authenticate, type MiddlewareOptions, singleHeader } from "./shared.js";

/**
 * Express middleware (typed structurally; the SDK does not depend on Express). On success it sets
 * `req.keyward` to the verified token and calls `next()`; otherwise it answers 401 (`invalid_token`,
 * `token_expired`, `missing_credentials`, with `WWW-Authenticate: Bearer …`), 403 `scope_denied`
 * or 503 `jwks_unavailable` with the `{error: {code, message, request_id}}` body. Unexpected errors
 * go to `next(err)`.
 *
 * For typed access, declare the property once in your app:
 * `declare global { namespace Express { interface Request { keyward?: VerifiedToken } } }`.
 *
 * @example
 * ```ts
 * import express from "express";
 * import { expressMiddleware, verifier } from "@keyward/sdk";
 *
 * const app = express();
 * const v = verifier({ issuer: "https://keyward.internal", audience: "research" });
 * app.use(expressMiddleware(v));
 * app.post("/admin", expressMiddleware(v, { requiredScopes: ["admin"] }), (req, res) => res.send("ok"));
 * app.get("/me", (req, res) => res.json({ sub: req.keyward?.subject }));
 * ```
 */
export function expressMiddleware(
  v: Verifier,
  options?: MiddlewareOptions,
): (
  req: IncomingMessage & { keyward?: VerifiedToken },
  res: ServerResponse,
  next: (err?: unknown) => void,
) => Promise<void> {
  return async (req, res, next) => {
    let outcome: Awaited<ReturnType<typeof authenticate>>;
    try {
      outcome = await authenticate(
        v,
        singleHeader(req.headers.authorization),
        singleHeader(req.headers["x-request-id"]),
        options,
      );
    } catch (err) {
      next(err);
      return;
    }
    if (!outcome.ok) {
      sendDenial(res, outcome);
      return;
    }
    req.keyward = outcome.token;
    next();
  };
}
