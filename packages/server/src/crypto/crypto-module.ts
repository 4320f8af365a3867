import type { Actor } from "../admin/admin-context.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { RequestContext, Router } from "../http/router.js";
import type { Db } from "../store/db.js";
import { INTEGRITY_ROOT_SEALED } from "./integrity-root.js";
import type { Keyring } from "./keyring.js";
import { type SealedColumn, SIGNING_KEYS_SEALED } from "./master-key-rotation.js";
import { registerMasterKeyRoutes } from "./master-key-routes.js";
import { createSigningKeys } from "./signing-keys.js";

/**
 * Keyward's own keys, wired: the ES256 signing keys (loaded, or the first one made) and the
 * master-key routes, which re-seal every sealed column the domains declare.
 */
export async function createCryptoModule(deps: { db: Db; keyring: Keyring; clock: Clock; audit: AuditSink }) {
  const { db, keyring } = deps;
  const signingKeys = createSigningKeys({ db, keyring, clock: deps.clock });
  await signingKeys.init();

  return {
    signingKeys,

    register(
      router: Router,
      opts: {
        requireAdmin: (ctx: RequestContext) => Promise<Actor>;
        /** The domains' sealed columns (credentials, users), besides the signing keys and integrity root. */
        sealedColumns: () => readonly SealedColumn[];
      },
    ): void {
      registerMasterKeyRoutes(router, {
        db,
        keyring,
        columns: () => [SIGNING_KEYS_SEALED, INTEGRITY_ROOT_SEALED, ...opts.sealedColumns()],
        audit: deps.audit,
        requireAdmin: opts.requireAdmin,
      });
    },
  };
}

export type CryptoModule = Awaited<ReturnType<typeof createCryptoModule>>;
