import type { KeyEntry } from "../keys/key-entry.js";
import { OAuthError } from "./oauth-errors.js";
import type { TokensDeps } from "./tokens-core.js";

/**
 * Which key is asking, for each way the token endpoints take one. The key's state and allowlist
 * are judged as everywhere else (auth/caller-auth.ts); only the OAuth error differs.
 */
export function tokenClients(deps: TokensDeps) {
  return {
    /**
     * Authenticates an API key presented as a client secret from `ip`; the id must name that very
     * key. The key's state and allowlist are judged as everywhere else (auth/caller-auth.ts).
     */
    async clientKey(client: { id: string; secret: string }, ip: string): Promise<KeyEntry> {
      const result = await deps.auth.key(client.secret, ip);
      if (!result.ok || result.caller.key.id !== client.id) {
        throw new OAuthError("invalid_client", `client authentication failed${result.ok ? "" : `: ${result.message}`}`);
      }
      return result.caller.key;
    },

    /** An agent's key presented as a bearer credential (introspection) from `ip`. */
    async bearerKey(secret: string, ip: string): Promise<KeyEntry> {
      const result = await deps.auth.key(secret, ip);
      if (!result.ok) throw new OAuthError("invalid_client", `client authentication failed: ${result.message}`);
      return result.caller.key;
    },

    /** An API key presented as a grant (`/v1/auth/token`) from `ip`: any problem is `invalid_grant`. */
    async grantKey(secret: string, ip: string): Promise<KeyEntry> {
      const result = await deps.auth.key(secret, ip);
      if (!result.ok) throw new OAuthError("invalid_grant", `the API key is not usable: ${result.message}`);
      return result.caller.key;
    },
  };
}
