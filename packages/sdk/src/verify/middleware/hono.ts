import type { VerifiedToken } from "../claims.js";
import type { Verifier } from "../verifier.js";
import { authenticate, type MiddlewareOptions } from "./shared.js";

/** The parts of a Hono context the middleware uses (structural: no dependency on Hono). */
export interface HonoContextLike {
  req: { header(name: string): string | undefined };
  set(key: "keyward", value: VerifiedToken): void;
}

/** Hono `Env` for apps using the middleware: `new Hono<KeywardHonoEnv>()` types `c.get("keyward")`. */
export type KeywardHonoEnv = { Variables: { keyward: VerifiedToken } };

/**
 * Hono middleware (typed structurally; the SDK does not depend on Hono). On success it calls
 * `c.set("keyward", token)` and continues; otherwise it returns 401 (`invalid_token`,
 * `token_expired`, `missing_credentials`, with `WWW-Authenticate: Bearer …`), 403 `scope_denied`
 * or 503 `jwks_unavailable` with the `{error: {code, message, request_id}}` body. Unexpected errors
 * are thrown to `app.onError`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { honoMiddleware, verifier, type KeywardHonoEnv } from "@keyward/sdk";
 *
 * const app = new Hono<KeywardHonoEnv>();
 * const v = verifier({ issuer: "https://keyward.internal", audience: "research" });
 * app.use("*", honoMiddleware(v));
 * app.get("/me", (c) => c.json({ sub: c.get("keyward").subject }));
 * ```
 */
export function honoMiddleware(
  v: Verifier,
  options?: MiddlewareOptions,
): (c: HonoContextLike, next: () => Promise<void>) => Promise<Response | undefined> {
  return async (c, next) => {
    const outcome = await authenticate(v, c.req.header("authorization"), c.req.header("x-request-id"), options);
    if (!outcome.ok) {
      return new Response(JSON.stringify(outcome.body), { status: outcome.status, headers: outcome.headers });
    }
    c.set("keyward", outcome.token);
    await next();
    return undefined;
  };
}
