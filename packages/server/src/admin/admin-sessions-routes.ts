import type { BlockList } from "node:net";
import type { Clock } from "../clock.js";
import { KeywardError } from "../errors.js";
import { readJson } from "../http/body.js";
import { clientIp } from "../http/client-ip.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { ADMIN, empty, errors, json } from "../openapi/operation.js";
import type { Actor } from "./admin-context.js";
import type { Role } from "./admin-roles.js";
import { SessionSchema, SignInSchema } from "./admin-schemas.js";
import type { AdminSessions } from "./admin-sessions.js";
import type { createSignInLimiter } from "./sign-in-limiter.js";

/**
 * The console's sign-in, "who am I" and sign-out (SPEC §11): an admin token in the body is exchanged for a
 * session cookie and the session's CSRF token. Mounted under /admin/v1 so the console, the CLI and
 * the OpenAPI document see one API.
 */
export function registerSessionRoutes(
  router: Router,
  deps: {
    sessions: AdminSessions;
    lookup: (token: string) => Promise<{ id: string; name: string; role: Role } | undefined>;
    requireAdmin: (ctx: RequestContext) => Promise<Actor>;
    limiter: ReturnType<typeof createSignInLimiter>;
    clock: Clock;
    trustedProxies: BlockList | null;
    idleTimeoutS: number;
  },
): void {
  const { sessions, lookup, requireAdmin, limiter } = deps;
  router.post(
    "/admin/v1/sessions",
    {
      operationId: "signIn",
      summary: "Exchange an admin token for a console session (HttpOnly cookie) and its CSRF token",
      tag: "admin",
      auth: "public",
      body: SignInSchema,
      responses: {
        201: json(SessionSchema, "Signed in; the response sets the keyward_session cookie"),
        ...errors(400, 401),
        429: { description: "rate_limited: too many sign-in attempts from this address", body: "error" },
      },
    },
    async (ctx) => {
      // Counted before the body is read: a refused address costs us no parsing and no hashing.
      const ip = clientIp(ctx.peerIp, ctx.req.headers["x-forwarded-for"], deps.trustedProxies);
      if (!limiter.allow(ip, deps.clock.now())) {
        throw new KeywardError("rate_limited", "too many sign-in attempts; try again in a minute", {
          "retry-after": "60",
        });
      }
      const { token } = await readJson(ctx.req, SignInSchema);
      const admin = await lookup(token);
      if (!admin) throw new KeywardError("unauthorized", "invalid admin token");
      const started = await sessions.start(ctx, admin.id);
      sendJson(
        ctx.res,
        201,
        {
          admin_token: { id: admin.id, name: admin.name, role: admin.role },
          csrf_token: started.csrf,
          expires_at: new Date(started.expiresAt).toISOString(),
          idle_timeout_s: deps.idleTimeoutS,
        },
        { "set-cookie": started.setCookie, "cache-control": "no-store" },
      );
    },
  );
  router.get(
    "/admin/v1/sessions/current",
    {
      operationId: "currentSession",
      summary:
        "The console session of this request's cookie, with its CSRF token, so a reloaded console stays signed in; " +
        "a request authenticated by an Authorization header has no session (404 not_found)",
      tag: "admin",
      auth: ADMIN,
      responses: {
        200: json(SessionSchema, "The session's admin identity, expiry and CSRF token (not cached: no-store)"),
        ...errors(401, 404),
      },
    },
    async (ctx) => {
      // Counts as activity like any request: authenticate() moves the idle expiry on.
      await requireAdmin(ctx);
      // A Bearer token is itself the credential; there is no session to describe. 404 rather than
      // 400: the request is well formed, the resource "this request's session" does not exist.
      if (ctx.req.headers.authorization !== undefined) {
        throw new KeywardError(
          "not_found",
          "no console session: this request is authenticated by its Authorization header",
        );
      }
      // Handing out the CSRF token on a GET is safe: only the console's own origin can read the
      // answer (the cookie is SameSite=Strict and /admin/v1 never sends CORS headers).
      const s = await sessions.current(ctx);
      sendJson(
        ctx.res,
        200,
        {
          admin_token: { id: s.adminId, name: s.name, role: s.role },
          csrf_token: s.csrf,
          expires_at: new Date(s.expiresAt).toISOString(),
          idle_timeout_s: deps.idleTimeoutS,
        },
        { "cache-control": "no-store" },
      );
    },
  );
  router.delete(
    "/admin/v1/sessions/current",
    {
      operationId: "signOut",
      summary: "End the console session of this request's cookie, on every replica",
      tag: "admin",
      auth: ADMIN,
      responses: { 204: empty("Signed out; the cookie is cleared"), ...errors(401, 403) },
    },
    async (ctx) => {
      await requireAdmin(ctx);
      const clear = await sessions.end(ctx);
      ctx.res.writeHead(204, { "set-cookie": clear });
      ctx.res.end();
    },
  );
}
