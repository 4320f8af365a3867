import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { KeywardError } from "../errors.js";
import type { RequestContext } from "../http/router.js";
import { generateSecret, hashSecret, randomBase62 } from "../keys/key-format.js";
import { upgradeLegacySecret } from "../keys/legacy-hashes.js";
import type { Db } from "../store/db.js";
import { isUniqueViolation } from "../store/db.js";
import type { Actor } from "./admin-context.js";

const BOOTSTRAP_ID = "adm_bootstrap";

/**
 * Admin tokens are stored as keyed hashes (key-format.ts `hashSecret`) and looked up by hash, so comparing a presented token
 * leaks nothing through timing (an attacker cannot steer the hash toward a stored one). They are
 * not cached: admin calls are rare, and a reset (`keyward admin-token reset`) must take effect at
 * once on every running process.
 */
export function createAdminAuth(deps: { db: Db; clock: Clock; integrity: IntegrityKeys }) {
  const { db, clock, integrity } = deps;

  async function byHash(hash: string): Promise<string | undefined> {
    return (await db.query<{ id: string }>("SELECT id FROM admin_tokens WHERE hash = $1", [hash]))[0]?.id;
  }
  /** Keyed first; a token stored before keyed hashes only if the upgrade marked it (keys/legacy-hashes.ts). */
  async function lookup(token: string): Promise<string | undefined> {
    const hash = hashSecret(token, integrity);
    const id = await byHash(hash);
    if (id !== undefined) return id;
    return (await upgradeLegacySecret(db, integrity, "admin_tokens", token)) ? byHash(hash) : undefined;
  }

  return {
    /**
     * On an empty store, installs the first admin token: the configured one, or a generated
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
        await db.exec("INSERT INTO admin_tokens (id, hash, name, created_at) VALUES ($1, $2, $3, $4)", [
          BOOTSTRAP_ID,
          hashSecret(token, integrity),
          "bootstrap",
          clock.now(),
        ]);
      } catch (err) {
        if (isUniqueViolation(err)) return {}; // another replica bootstrapped first
        throw err;
      }
      return configured ? {} : { generated: token };
    },

    /** Authenticates an admin request; throws 401 `unauthorized`. */
    async requireAdmin(ctx: RequestContext): Promise<Actor> {
      const token = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(ctx.req.headers.authorization ?? "")?.[1];
      if (!token) throw new KeywardError("unauthorized", "admin token required (Authorization: Bearer …)");
      if (token.length > 512) throw new KeywardError("unauthorized", "invalid admin token");
      const id = await lookup(token);
      if (!id) throw new KeywardError("unauthorized", "invalid admin token");
      return {
        principal: `admin:${id}`,
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
    const removed = await tx.exec("DELETE FROM admin_tokens");
    await tx.exec("INSERT INTO admin_tokens (id, hash, name, created_at) VALUES ($1, $2, $3, $4)", [
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
