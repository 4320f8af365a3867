import type { AuthResult } from "../auth/caller-auth.js";
import { covers } from "../auth/scopes.js";
import { isWellFormed } from "../crypto/secret-format.js";
import type { KeyEntry } from "../keys/key-entry.js";
import { type RefreshRows, type RequestMeta, revokeEvent, type TokensDeps } from "./tokens-core.js";

/** A token after it was issued: is it active (introspection), revoke it, and purge the dead ones. */
export function tokenLifecycle(deps: TokensDeps, rows: RefreshRows) {
  const { db, now, audit, access, refresh } = deps;
  const { findRefresh } = rows;

  return {
    /**
     * RFC 7662, for an agent: active only for a live token meant for that agent (its `aud` names
     * the agent, or the issuer with the agent in its scopes); anything else is `{active: false}`.
     */
    async introspect(token: string, caller: KeyEntry): Promise<Record<string, unknown>> {
      const inactive = { active: false };
      const agent = caller.owner.slice("agent:".length);
      if (token.startsWith("kwr_")) {
        if (!isWellFormed(token, "kwr")) return inactive;
        const row = await findRefresh(token);
        if (!row || row.key_id !== caller.id || row.used_at !== null || row.revoked_at !== null) return inactive;
        if (row.expires_at <= now() || !(await deps.auth.keyById(row.key_id, null)).ok) return inactive;
        return {
          active: true,
          token_type: "refresh_token",
          client_id: row.key_id,
          sub: row.subject,
          scope: row.scope,
          exp: Math.floor(row.expires_at / 1000),
          iat: Math.floor(row.created_at / 1000),
        };
      }
      const checked = access.check(token);
      if (!checked.ok) return inactive;
      // Active for this agent where the gateway would accept it for this agent: meant for it, or
      // for Keyward with the agent among its effective scopes (the key's current ones).
      const judged: AuthResult = await deps.auth.checked(checked.token, { kind: "gateway", agent }, null);
      if (!judged.ok) return inactive;
      const { scopes, scopeSet } = judged.caller;
      if (!checked.token.audiences.includes(agent) && !covers(scopeSet, `agent:${agent}`)) return inactive;
      return { active: true, token_type: "Bearer", ...checked.token.claims, scope: scopes.join(" ") };
    },

    /**
     * RFC 7009: revokes a refresh token (its whole family) or an access token (by jti, on every
     * replica), for the authenticated client it was issued to, or for the `holder` who presented
     * the access token itself (token-routes.ts says why). Unknown, invalid or someone else's
     * tokens are answered the same way: silently.
     */
    async revoke(token: string, by: KeyEntry | "holder", meta: RequestMeta): Promise<void> {
      if (token.startsWith("kwr_")) {
        // A refresh token is bound to its key: only that key's authentication revokes it.
        if (by === "holder" || !isWellFormed(token, "kwr")) return;
        const row = await findRefresh(token);
        if (!row || by.id !== row.key_id) return;
        await db.transaction(async (tx) => {
          const n = await refresh.revokeFamily(tx, row.family, now());
          if (n > 0) {
            await audit.recordIn(tx, revokeEvent(by.owner, row.key_id, meta, { kind: "refresh", family: row.family }));
          }
        });
        return;
      }
      const checked = access.check(token);
      // An expired token needs no revocation; an invalid one cannot be ours.
      if (!checked.ok) return;
      const { claims, expMs } = checked.token;
      if (by !== "holder" && by.id !== claims.client_id && by.owner !== claims.sub) return;
      const actor = by === "holder" ? claims.sub : by.owner;
      const change = { kind: "token_revocation" as const, ref: claims.jti };
      await db.transaction(async (tx) => {
        await deps.revocations.insert(tx, claims.jti, expMs);
        await deps.changes.record(tx, change);
        await audit.recordIn(tx, revokeEvent(actor, claims.client_id, meta, { kind: "access", jti: claims.jti }));
      });
      deps.revocations.remember(claims.jti, expMs);
      await deps.changes.publish([change]);
    },

    /**
     * Revokes what one grant issued (RFC 6749 §4.1.2: a replayed authorization code): its access
     * token by jti, and its refresh family, in one transaction, audited; replicas hear of it.
     */
    async revokeIssued(
      issued: { jti: string; expMs: number; family: string | null },
      by: { actor: string; clientId: string },
      meta: RequestMeta,
    ): Promise<void> {
      const change = { kind: "token_revocation" as const, ref: issued.jti };
      await db.transaction(async (tx) => {
        await deps.revocations.insert(tx, issued.jti, issued.expMs);
        await deps.changes.record(tx, change);
        if (issued.family !== null) await refresh.revokeFamily(tx, issued.family, now());
        const details = { kind: "grant", jti: issued.jti, family: issued.family, reason: "code_replayed" };
        await audit.recordIn(tx, revokeEvent(by.actor, by.clientId, meta, details));
      });
      deps.revocations.remember(issued.jti, issued.expMs);
      await deps.changes.publish([change]);
    },

    /** Refresh tokens past expiry and revocations of expired tokens are dropped. */
    async purge(): Promise<void> {
      await refresh.purgeExpired(now());
      await deps.revocations.purge();
    },
  };
}
