import { randomBytes, timingSafeEqual } from "node:crypto";
import type { BlockList } from "node:net";
import type { Clock } from "../clock.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { hashSecret } from "../crypto/secret-format.js";
import { KeywardError } from "../errors.js";
import { requestIsHttps } from "../http/client-ip.js";
import type { RequestContext } from "../http/router.js";
import { cookieValue, fromOwnOrigin } from "../http/same-origin.js";
import type { Role } from "./admin-roles.js";
import type { AdminStore } from "./admin-store.js";

export const SESSION_COOKIE = "keyward_session";
/** 32 random bytes, base64url: the shape of a session id and of a CSRF token. */
const OPAQUE = /^[A-Za-z0-9_-]{43}$/;
/** last_seen_at is written at most this often per session: idle expiry is precise to within it. */
const TOUCH_EVERY_MS = 60_000;

export interface SessionSettings {
  idleTimeoutS: number;
  absoluteTimeoutS: number;
}

/** The session a request's cookie names, once its expiry and (for a change) its CSRF token were checked. */
export interface SessionIdentity {
  adminId: string;
  role: Role;
}

/**
 * Console sessions (SPEC §11), stored server-side so that every replica knows them and a
 * sign-out or a revoked admin token ends them at once. The cookie holds only an opaque random id;
 * the store holds its keyed hash and the keyed hash of the session's CSRF token.
 *
 * CSRF: a cookie is sent by the browser whatever page made the request, so a change made with the
 * cookie must also carry `X-CSRF-Token` (given at sign-in, readable only by the console's own
 * script) and, when the browser says where it came from (`Origin`), come from this server's own
 * origin. A request with a Bearer token carries no ambient authority and needs neither.
 *
 * The CSRF token is a MAC of the session id under its own subkey (`sessionCsrf`), not a second
 * random value: the store keeps only hashes, yet `current` can hand the token back to a reloaded
 * console, and every tab of one session holds the same token. It tells nothing about the id (a MAC
 * under a key the database does not hold), and the keyed hash in the store uses another subkey.
 */
export function createAdminSessions(deps: {
  store: AdminStore;
  clock: Clock;
  integrity: IntegrityKeys;
  settings: SessionSettings;
  trustedProxies: BlockList | null;
}) {
  const { store, clock, integrity, settings } = deps;
  const idleMs = settings.idleTimeoutS * 1000;
  const hash = (v: string) => hashSecret(v, integrity);
  const csrfOf = (id: string) => Buffer.from(integrity.mac("sessionCsrf", id), "hex").toString("base64url");

  const cookieOf = (ctx: RequestContext) => cookieValue(ctx.req.headers.cookie, SESSION_COOKIE);

  function cookie(ctx: RequestContext, value: string, maxAgeS: number): string {
    const secure = requestIsHttps(ctx.req, ctx.peerIp, deps.trustedProxies) ? "; Secure" : "";
    return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure}`;
  }

  function sameOrigin(ctx: RequestContext): boolean {
    // No Origin: not a browser's cross-site request, the CSRF token decides (http/same-origin.ts).
    if (ctx.req.headers.origin === undefined) return true;
    const host = ctx.req.headers.host;
    const scheme = requestIsHttps(ctx.req, ctx.peerIp, deps.trustedProxies) ? "https" : "http";
    return host !== undefined && fromOwnOrigin(ctx.req.headers, `${scheme}://${host}`);
  }

  function csrfMatches(given: string | string[] | undefined, storedHash: string): boolean {
    if (typeof given !== "string" || !OPAQUE.test(given)) return false;
    const a = Buffer.from(hash(given));
    const b = Buffer.from(storedHash);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  return {
    /** True when the request carries a session cookie (and no Authorization header decides instead). */
    present(ctx: RequestContext): boolean {
      return cookieOf(ctx) !== undefined;
    },

    /** Starts a session for an authenticated admin: the cookie to set and the CSRF token to hand back. */
    async start(ctx: RequestContext, adminId: string) {
      const id = randomBytes(32).toString("base64url");
      const csrf = csrfOf(id);
      const now = clock.now();
      const expiresAt = now + settings.absoluteTimeoutS * 1000;
      await store.deleteExpiredSessions(now, idleMs);
      await store.insertSession({
        hash: hash(id),
        admin_token_id: adminId,
        csrf_hash: hash(csrf),
        created_at: now,
        expires_at: expiresAt,
      });
      return { setCookie: cookie(ctx, id, settings.absoluteTimeoutS), csrf, expiresAt };
    },

    /** The session of the request's cookie; 401 when there is none, 403 when a change lacks CSRF proof. */
    async authenticate(ctx: RequestContext): Promise<SessionIdentity> {
      const id = cookieOf(ctx);
      if (id === undefined || !OPAQUE.test(id)) throw new KeywardError("unauthorized", "invalid or expired session");
      const key = hash(id);
      const row = await store.session(key);
      const now = clock.now();
      if (!row) throw new KeywardError("unauthorized", "invalid or expired session");
      if (now >= row.expires_at || now >= row.last_seen_at + idleMs) {
        await store.deleteSession(key);
        throw new KeywardError("unauthorized", "invalid or expired session");
      }
      if (!["GET", "HEAD", "OPTIONS"].includes(ctx.method)) {
        if (!csrfMatches(ctx.req.headers["x-csrf-token"], row.csrf_hash) || !sameOrigin(ctx)) {
          throw new KeywardError(
            "forbidden",
            "a change made with a session needs its X-CSRF-Token, from its own origin",
          );
        }
      }
      if (now - row.last_seen_at >= TOUCH_EVERY_MS) await store.touchSession(key, now);
      return { adminId: row.admin_token_id, role: row.role };
    },

    /**
     * The request's session as the console needs it after a reload: who, until when, and its CSRF
     * token. Call after `authenticate` (which checked expiry and counted the request as activity);
     * 401 when the session ended in between. A session begun before CSRF tokens were derived had a
     * random one that cannot be read back: it is given the derived one from here on.
     */
    async current(ctx: RequestContext) {
      const id = cookieOf(ctx);
      const key = id !== undefined && OPAQUE.test(id) ? hash(id) : undefined;
      const row = key === undefined ? undefined : await store.session(key);
      if (id === undefined || key === undefined || !row) {
        throw new KeywardError("unauthorized", "invalid or expired session");
      }
      const csrf = csrfOf(id);
      if (!csrfMatches(csrf, row.csrf_hash)) await store.setSessionCsrf(key, hash(csrf));
      return { adminId: row.admin_token_id, name: row.name, role: row.role, csrf, expiresAt: row.expires_at };
    },

    /** Ends the request's session server-side; the returned header clears the cookie. */
    async end(ctx: RequestContext): Promise<string> {
      const id = cookieOf(ctx);
      if (id !== undefined && OPAQUE.test(id)) await store.deleteSession(hash(id));
      return cookie(ctx, "", 0);
    },
  };
}

export type AdminSessions = ReturnType<typeof createAdminSessions>;
