import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { INTEGRITY_ROOT_SEALED } from "../crypto/integrity-root.js";
import type { Keyring } from "../crypto/keyring.js";
import { type SealedColumn, SIGNING_KEYS_SEALED } from "../crypto/master-key-rotation.js";
import type { Router } from "../http/router.js";
import type { Db } from "../store/db.js";
import { createAdminAuth } from "./admin-auth.js";
import { registerMasterKeyRoutes } from "./master-key-routes.js";

/**
 * Admin-token auth, wired: the first admin token is made (or the configured one stored) before
 * any route is mounted; every admin route asks `requireAdmin`. Also the master-key routes, the
 * keyring's admin API, which re-seal every sealed column the domains declare.
 */
export async function createAdminModule(
  deps: { db: Db; clock: Clock; integrity: IntegrityKeys; keyring: Keyring; audit: AuditSink },
  /** `admin_token` from the configuration, if set. */
  configuredToken: string | undefined,
) {
  const { db } = deps;
  const adminAuth = createAdminAuth({ db, clock: deps.clock, integrity: deps.integrity });
  const { generated, configuredIgnored } = await adminAuth.bootstrap(configuredToken);
  const { requireAdmin } = adminAuth;
  return {
    requireAdmin,
    /** The generated first admin token, when this start created one (print once, never again). */
    generatedToken: generated,
    /** True when a configured token was not stored: the store already had admin tokens, not this one. */
    configuredIgnored: configuredIgnored === true,

    /** `sealedColumns`: the domains' own (credentials, users), besides the signing keys and integrity root. */
    register(router: Router, sealedColumns: () => readonly SealedColumn[]): void {
      registerMasterKeyRoutes(router, {
        db,
        keyring: deps.keyring,
        columns: () => [SIGNING_KEYS_SEALED, INTEGRITY_ROOT_SEALED, ...sealedColumns()],
        audit: deps.audit,
        requireAdmin,
      });
    },
  };
}

export type AdminModule = Awaited<ReturnType<typeof createAdminModule>>;
