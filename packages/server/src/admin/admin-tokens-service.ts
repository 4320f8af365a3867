import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { generateSecret, hashSecret, newId } from "../crypto/secret-format.js";
import { KeywardError, notFound } from "../errors.js";
import type { Db } from "../store/db.js";
import type { Actor } from "./admin-context.js";
import type { Role } from "./admin-roles.js";
import type { AdminStore, AdminTokenRow } from "./admin-store.js";
import { auditedChange, changeEvent } from "./audited-change.js";

/**
 * Named admin tokens with a role (SPEC §11). The secret is returned once by `create` and stored
 * only as its keyed hash. Revocation keeps the row (audit records name its id) and ends the
 * token's console sessions in the same transaction; no cache holds admin tokens, so every replica
 * refuses it from its next request (admin-auth.ts).
 */
export function createAdminTokensService(deps: {
  db: Db;
  store: AdminStore;
  audit: AuditSink;
  clock: Clock;
  integrity: IntegrityKeys;
}) {
  const { db, store, audit, clock, integrity } = deps;
  return {
    async create(actor: Actor, input: { name: string; role: Role }): Promise<{ token: AdminTokenRow; secret: string }> {
      const secret = generateSecret("kwa");
      const token: AdminTokenRow = {
        id: newId("adm"),
        name: input.name,
        role: input.role,
        created_at: clock.now(),
        revoked_at: null,
      };
      await auditedChange(db, audit, async (tx) => {
        await store.insert(tx, { ...token, hash: hashSecret(secret, integrity) });
        return {
          result: undefined,
          event: changeEvent(actor, "admin_token.created", `admin:${token.id}`, { name: token.name, role: token.role }),
        };
      });
      return { token, secret };
    },

    list(after: string | undefined, limit: number): Promise<AdminTokenRow[]> {
      return store.list(after, limit);
    },

    /** 404 for an unknown id, 409 for the last active owner (nobody could manage admins after it). */
    async revoke(actor: Actor, id: string): Promise<AdminTokenRow> {
      return auditedChange(db, audit, async (tx) => {
        const owners = await store.activeOwnersLocked(tx);
        const token = await store.get(tx, id);
        if (!token) throw notFound("admin token");
        if (token.revoked_at === null && token.role === "owner" && owners.length === 1 && owners[0] === id) {
          throw new KeywardError(
            "conflict",
            "this is the last active owner token: create another owner token before revoking it",
          );
        }
        const now = clock.now();
        if (token.revoked_at === null) await store.revoke(tx, id, now);
        return {
          result: { ...token, revoked_at: token.revoked_at ?? now },
          event: changeEvent(actor, "admin_token.revoked", `admin:${id}`, { name: token.name, role: token.role }),
        };
      });
    },
  };
}

export type AdminTokensService = ReturnType<typeof createAdminTokensService>;
