import type { IncomingHttpHeaders } from "node:http";
import type { VerifiedToken } from "../claims.js";
import type { Verifier } from "../verifier.js";
import { authenticate, type MiddlewareOptions, singleHeader } from "./shared.js";

/** The parts of a Fastify request the hook uses (structural: no dependency on Fastify). */
export interface FastifyRequestLike {
  headers: IncomingHttpHeaders;
  keyward?: VerifiedToken | null;
}

/** The parts of a Fastify reply the hook uses. */
export interface FastifyReplyLike {
  code(statusCode: number): unknown;
  headers(values: Record<string, string>): unknown;
  send(payload?: unknown): unknown;
}

/**
 * A Fastify hook for `onRequest` or `preHandler` (typed structurally; the SDK does not depend on
 * Fastify). On success it sets `request.keyward`; otherwise it answers 401 (`invalid_token`,
 * `token_expired`, `missing_credentials`, with `WWW-Authenticate: Bearer …`), 403 `scope_denied` or
 * 503 `jwks_unavailable` with the `{error: {code, message, request_id}}` body. Unexpected errors
 * are thrown to Fastify's error handler.
 *
 * Declare the property so Fastify keeps one request shape and TypeScript knows it:
 * `app.decorateRequest("keyward", null)` and
 * `declare module "fastify" { interface FastifyRequest { keyward?: VerifiedToken | null } }`.
 *
 * @example
 * ```ts
 * import Fastify from "fastify";
 * import { fastifyHook, verifier } from "@keyward/sdk";
 *
 * const app = Fastify();
 * const v = verifier({ issuer: "https://keyward.internal", audience: "research" });
 * app.decorateRequest("keyward", null);
 * app.addHook("onRequest", fastifyHook(v));
 * app.get("/me", async (request) => ({ sub: request.keyward?.subject }));
 * app.post("/admin", { preHandler: fastifyHook(v, { requiredScopes: ["admin"] }) }, async () => "ok");
 * ```
 */
export function fastifyHook(
  v: Verifier,
  options?: MiddlewareOptions,
): (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown> {
  return async (request, reply) => {
    const outcome = await authenticate(
      v,
      singleHeader(request.headers.authorization),
      singleHeader(request.headers["x-request-id"]),
      options,
    );
    if (outcome.ok) {
      request.keyward = outcome.token;
      return undefined;
    }
    reply.code(outcome.status);
    reply.headers(outcome.headers);
    reply.send(JSON.stringify(outcome.body));
    // An async hook that has answered must return the reply, or Fastify continues the chain.
    return reply;
  };
}
