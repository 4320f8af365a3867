import { refreshRotation } from "./refresh-rotation.js";
import { tokenClients } from "./token-clients.js";
import { tokenLifecycle } from "./token-lifecycle.js";
import { createTokenMinter } from "./token-minting.js";
import { createRefreshRows, type TokensDeps } from "./tokens-core.js";

export {
  ACCESS_TOKEN_TYPE,
  DEFAULT_MAX_REFRESH_FAMILIES,
  type RefreshReuse,
  type RegisteredClientRefresh,
  type RequestMeta,
  type TokenResponse,
  type TokensConfig,
  type TokensDeps,
} from "./tokens-core.js";

/**
 * Access and refresh tokens for API keys (SPEC §5): issue (token-minting.ts), refresh with
 * rotation and reuse detection (refresh-rotation.ts, RFC 9700 §4.14), introspection (RFC 7662)
 * and revocation (RFC 7009) (token-lifecycle.ts). Token exchange lives in token-exchange.ts.
 */
export function createTokensService(deps: TokensDeps) {
  const rows = createRefreshRows(deps);
  const minter = createTokenMinter(deps, rows);
  return {
    ...tokenClients(deps),
    issueForKey: minter.issueForKey,
    /** For a grant checked elsewhere (oauth/code-grant.ts): mints, and says what it issued. */
    issueTracked: minter.issueTracked,
    refresh: refreshRotation(deps, rows, minter),
    ...tokenLifecycle(deps, rows),
  };
}

export type TokensService = ReturnType<typeof createTokensService>;
