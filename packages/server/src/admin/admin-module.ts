import type { Clock } from "../clock.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import type { Db } from "../store/db.js";
import { createAdminAuth } from "./admin-auth.js";

/**
 * Admin-token auth, wired: the first admin token is made (or the configured one stored) before
 * any route is mounted; every admin route asks `requireAdmin`.
 */
export async function createAdminModule(
  deps: { db: Db; clock: Clock; integrity: IntegrityKeys },
  /** `admin_token` from the configuration, if set. */
  configuredToken: string | undefined,
) {
  const adminAuth = createAdminAuth(deps);
  const { generated, configuredIgnored } = await adminAuth.bootstrap(configuredToken);
  return {
    requireAdmin: adminAuth.requireAdmin,
    /** The generated first admin token, when this start created one (print once, never again). */
    generatedToken: generated,
    /** True when a configured token was not stored: the store already had admin tokens, not this one. */
    configuredIgnored: configuredIgnored === true,
  };
}

export type AdminModule = Awaited<ReturnType<typeof createAdminModule>>;
