import type { Actor } from "../admin/admin-context.js";
import type { CallerAuth } from "../auth/caller-auth.js";
import type { RequestContext, Router } from "../http/router.js";
import type { SealedModuleDeps } from "../module-deps.js";
import { registerToolRoutes } from "./tool-routes.js";
import type { UserCredentialSource } from "./user-credential-source.js";
import { createUserTokenCheck } from "./user-token.js";
import { registerUserRoutes } from "./users-routes.js";
import { createUsersService } from "./users-service.js";
import { createUsersStore, USER_CREDENTIAL_SEALED_COLUMNS } from "./users-store.js";

/**
 * Users and their tool credentials, wired (SPEC §3, §6, §8): the store and service, the admin and
 * self-service routes, and the agent-facing tool routes. `source` is what the MCP gateway reads.
 */
export function createUsersModule(
  deps: SealedModuleDeps & {
    /** The per-user credential names an agent may fetch (grants service `userCredentials`). */
    grantedUserCredentials: (agent: string) => Promise<readonly string[]>;
  },
) {
  const users = createUsersService({
    db: deps.db,
    store: createUsersStore(deps.db),
    keyring: deps.keyring,
    clock: deps.clock,
    audit: deps.audit,
    changes: deps.changes,
    logger: deps.logger,
  });

  return {
    users,
    source: users.source as UserCredentialSource,
    sealedColumns: USER_CREDENTIAL_SEALED_COLUMNS,

    register(router: Router, auth: { requireAdmin: (ctx: RequestContext) => Promise<Actor>; auth: CallerAuth }): void {
      registerUserRoutes(router, {
        users,
        requireAdmin: auth.requireAdmin,
        auth: auth.auth,
      });
      registerToolRoutes(router, {
        auth: auth.auth,
        checkUserToken: createUserTokenCheck(auth.auth),
        grantedUserCredentials: deps.grantedUserCredentials,
        source: users.source,
        audit: deps.audit,
        metrics: deps.metrics,
      });
    },

    /** Drops the decrypted values held in memory. */
    close(): void {
      users.clear();
    },
  };
}

export type UsersModule = ReturnType<typeof createUsersModule>;
