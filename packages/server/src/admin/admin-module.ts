import type { BlockList } from "node:net";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { INTEGRITY_ROOT_SEALED } from "../crypto/integrity-root.js";
import type { Keyring } from "../crypto/keyring.js";
import { type SealedColumn, SIGNING_KEYS_SEALED } from "../crypto/master-key-rotation.js";
import type { Router } from "../http/router.js";
import type { DocumentedRoute } from "../openapi/operation.js";
import type { Db } from "../store/db.js";
import { createAdminAuth } from "./admin-auth.js";
import { type AdminSessionSettings, adminSessionsSchema } from "./admin-config.js";
import { permissionFor, someRoleLacks } from "./admin-roles.js";
import { createAdminSessions } from "./admin-sessions.js";
import { registerSessionRoutes } from "./admin-sessions-routes.js";
import { createAdminStore } from "./admin-store.js";
import { registerAdminTokenRoutes } from "./admin-tokens-routes.js";
import { createAdminTokensService } from "./admin-tokens-service.js";
import { registerMasterKeyRoutes } from "./master-key-routes.js";
import { createSignInLimiter } from "./sign-in-limiter.js";

/**
 * Admin identities, wired: the first admin token (an owner) is made, or the configured one stored,
 * before any route is mounted; every admin route asks `requireAdmin`, which authenticates a token
 * or a console session and authorizes by admin-roles.ts. Also the admin-token and session routes,
 * and the master-key routes, the keyring's admin API, which re-seal every sealed column the
 * domains declare.
 */
export async function createAdminModule(
  deps: {
    db: Db;
    clock: Clock;
    integrity: IntegrityKeys;
    keyring: Keyring;
    audit: AuditSink;
    trustedProxies?: BlockList | null;
    sessions?: AdminSessionSettings;
  },
  /** `admin_token` from the configuration, if set. */
  configuredToken: string | undefined,
) {
  const { db, clock, integrity } = deps;
  const settings = deps.sessions ?? adminSessionsSchema.parse({});
  const trustedProxies = deps.trustedProxies ?? null;
  const store = createAdminStore(db);
  const sessions = createAdminSessions({
    ...{ store, clock, integrity, trustedProxies },
    settings: { idleTimeoutS: settings.idle_timeout_s, absoluteTimeoutS: settings.absolute_timeout_s },
  });
  const adminAuth = createAdminAuth({ db, store, clock, integrity, sessions });
  const { generated, configuredIgnored } = await adminAuth.bootstrap(configuredToken);
  const { requireAdmin } = adminAuth;
  const tokens = createAdminTokensService({ db, store, audit: deps.audit, clock, integrity });
  const limiter = createSignInLimiter({
    perAddressPerMinute: settings.sign_in_per_address_per_minute,
    totalPerMinute: settings.sign_in_per_minute,
  });
  return {
    requireAdmin,
    /** The generated first admin token, when this start created one (print once, never again). */
    generatedToken: generated,
    /** True when a configured token was not stored: the store already had admin tokens, not this one. */
    configuredIgnored: configuredIgnored === true,

    /** `sealedColumns`: the domains' own (credentials, users), besides the signing keys and integrity root. */
    /**
     * For /openapi.json: an admin operation that some role may not call also answers 403, from
     * `requireAdmin` rather than from the route, so it is added here, in the same place that decides it.
     */
    documentAccess(route: DocumentedRoute): DocumentedRoute {
      const { method, pattern, doc } = route;
      if (!pattern.startsWith("/admin/v1/") || doc.responses[403] || !someRoleLacks(permissionFor(method, pattern))) {
        return route;
      }
      const forbidden = { description: "forbidden: the admin token's role may not do this", body: "error" as const };
      return { ...route, doc: { ...doc, responses: { ...doc.responses, 403: forbidden } } };
    },

    register(router: Router, sealedColumns: () => readonly SealedColumn[]): void {
      registerAdminTokenRoutes(router, { tokens, requireAdmin });
      registerSessionRoutes(router, {
        ...{ sessions, requireAdmin, limiter, clock, trustedProxies },
        lookup: adminAuth.lookup,
        idleTimeoutS: settings.idle_timeout_s,
      });
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
