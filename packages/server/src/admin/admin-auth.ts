import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { upgradeLegacySecret } from "../crypto/legacy-hashes.js";
import { generateSecret, hashSecret, randomBase62 } from "../crypto/secret-format.js";
import { KeywardError } from "../errors.js";
import type { RequestContext } from "../http/router.js";
import type { Db } from "../store/db.js";
import { isUniqueViolation } from "../store/db.js";
import type { Actor } from "./admin-context.js";
import { permissionFor, type Role, roleMay } from "./admin-roles.js";
import { type AdminSessions, createAdminSessions } from "./admin-sessions.js";
import { type AdminStore, createAdminStore } from "./admin-store.js";

const BOOTSTRAP_ID = "adm_bootstrap";
const MAX_TOKEN_LENGTH = 512;

/**
 * Admin tokens are stored as keyed hashes (crypto/secret-format.ts `hashSecret`) and looked up by hash, so comparing a presented token
 * leaks nothing through timing (an attacker cannot steer the hash toward a stored one). They are
 * not cached: admin calls are rare, and a reset (`keyward admin-token reset`) or a revocation must
 * take effect on the very next request on every running process, which a read of the shared store
 * gives without any message between replicas.
 *
 * `requireAdmin` is the one door of the admin API: it authenticates (a Bearer token, or a console
 * session with its CSRF proof, admin-sessions.ts) and then authorizes the matched route by the
 * policy of admin-roles.ts.
 */
export function createAdminAuth(deps: {
  db: Db;
  clock: Clock;
  integrity: IntegrityKeys;
  /** Default: the store on `db`, and sessions with the default lifetimes and no trusted proxy. */
  store?: AdminStore;
  sessions?: AdminSessions;
}) {
  const { db, clock, integrity } = deps;
  const store = deps.store ?? createAdminStore(db);
  const sessions =
    deps.sessions ??
    createAdminSessions({
      ...{ store, clock, integrity, trustedProxies: null },
      settings: { idleTimeoutS: 1800, absoluteTimeoutS: 43_200 },
    });

  /** Keyed first; a token stored before keyed hashes only if the upgrade marked it (crypto/legacy-hashes.ts). */
  async function lookup(token: string): Promise<{ id: string; name: string; role: Role } | undefined> {
    if (token.length > MAX_TOKEN_LENGTH) return undefined;
    const hash = hashSecret(token, integrity);
    const found = await store.activeByHash(hash);
    if (found !== undefined) return found;
    return (await upgradeLegacySecret(db, integrity, "admin_tokens", token)) ? store.activeByHash(hash) : undefined;
  }

  async function bearer(ctx: RequestContext): Promise<{ id: string; role: Role }> {
    const token = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(ctx.req.headers.authorization ?? "")?.[1];
    if (!token) throw new KeywardError("unauthorized", "admin token required (Authorization: Bearer …)");
    const found = await lookup(token);
    if (!found) throw new KeywardError("unauthorized", "invalid admin token");
    return found;
  }

  return {
    lookup,

    /**
     * On an empty store, installs the first admin token (an owner): the configured one, or a generated
     * `kwa_…` that is returned (to be printed once) and never stored in clear. On a store that
     * already has admin tokens, `configuredIgnored` says a configured token is not one of them: it
     * was silently useless before (an example's token after the quick start had made `./.keyward`).
     */
    async bootstrap(configured: string | undefined): Promise<{ generated?: string; configuredIgnored?: true }> {
      const count = (await db.query<{ n: number }>("SELECT COUNT(*) AS n FROM admin_tokens"))[0];
      if (Number(count?.n ?? 0) > 0) {
        if (configured === undefined || (await lookup(configured)) !== undefined) return {};
        return { configuredIgnored: true };
      }
      const token = configured ?? generateSecret("kwa");
      try {
        await store.insert(db, {
          id: BOOTSTRAP_ID,
          hash: hashSecret(token, integrity),
          name: "bootstrap",
          role: "owner",
          created_at: clock.now(),
        });
      } catch (err) {
        if (isUniqueViolation(err)) return {}; // another replica bootstrapped first
        throw err;
      }
      return configured ? {} : { generated: token };
    },

    /**
     * Authenticates an admin request and authorizes its route (admin-roles.ts): 401 `unauthorized`
     * without a valid token or session, 403 `forbidden` for a session change without CSRF proof or
     * a role the route's permission is not granted to.
     */
    async requireAdmin(ctx: RequestContext): Promise<Actor> {
      // The Authorization header wins: a script's Bearer token is never mistaken for a browser's cookie.
      const viaSession = ctx.req.headers.authorization === undefined && sessions.present(ctx);
      const identity = viaSession
        ? await sessions.authenticate(ctx).then((s) => ({ id: s.adminId, role: s.role }))
        : await bearer(ctx);
      const permission = permissionFor(ctx.method, ctx.route);
      if (permission !== "public" && !roleMay(identity.role, permission)) {
        throw new KeywardError("forbidden", `the ${identity.role} role may not do this`);
      }
      return {
        principal: `admin:${identity.id}`,
        role: identity.role,
        ip: ctx.peerIp,
        requestId: ctx.requestId,
        propagationPending: () => {
          if (!ctx.res.headersSent) ctx.res.setHeader("keyward-propagation", "pending");
        },
      };
    },
  };
}

export type AdminAuth = ReturnType<typeof createAdminAuth>;

/**
 * Replaces every admin token by one new `kwa_…` token (returned, to be shown once), in one
 * transaction with its audit record. For an operator who lost the token: it needs access to the
 * store itself (the data dir, or the database URL), not to the API.
 */
export async function resetAdminTokens(
  db: Db,
  audit: AuditSink,
  now: number,
  integrity: IntegrityKeys,
): Promise<string> {
  const token = generateSecret("kwa");
  await db.transaction(async (tx) => {
    await tx.exec("DELETE FROM admin_sessions");
    const removed = await tx.exec("DELETE FROM admin_tokens");
    await tx.exec("INSERT INTO admin_tokens (id, hash, name, role, created_at) VALUES ($1, $2, $3, 'owner', $4)", [
      `adm_${randomBase62(12)}`,
      hashSecret(token, integrity),
      "reset",
      now,
    ]);
    await audit.recordIn(tx, {
      actor: "operator:cli",
      action: "admin_token.reset",
      outcome: "success",
      details: { removed },
    });
  });
  return token;
}
