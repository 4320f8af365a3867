import { mcpServerOfResource } from "../auth/mcp-resource.js";
import type { KeyEntry } from "../keys/key-entry.js";
import { OAuthError } from "../tokens/oauth-errors.js";
import type { RefreshTokenRow } from "../tokens/refresh-tokens-store.js";
import type { RegisteredClientRefresh } from "../tokens/tokens-service.js";
import { scopesOnServer } from "./granted-scopes.js";
import { clientStandInKey, type OAuthClients } from "./oauth-clients.js";

/**
 * Whom a refresh token issued to a registered client rests on, judged at each refresh: the client
 * must still be registered, the token's resource must still be one of our MCP servers, and the
 * user gets what the configuration grants now (a scope removed from `trusted_issuers` stops
 * refreshing; a narrower grant stays narrow, as the rotation keeps the token's own scopes).
 */
export function createRegisteredRefresh(deps: {
  clients: OAuthClients;
  issuer: () => string;
  serverExists: (name: string) => boolean;
  /** The sign-in issuer's configured scopes, now. */
  signInScopes: () => readonly string[];
}): RegisteredClientRefresh {
  return {
    async refreshKey(row: RefreshTokenRow): Promise<KeyEntry> {
      const client = await deps.clients.get(row.key_id);
      if (!client)
        throw new OAuthError("invalid_grant", "the client this refresh token was issued to is not registered");
      const server = row.audience === null ? undefined : mcpServerOfResource(deps.issuer(), row.audience);
      if (server === undefined || !deps.serverExists(server)) {
        throw new OAuthError("invalid_grant", "the refresh token's resource is not an MCP server here any more");
      }
      void deps.clients.touch(client.id).catch(() => {});
      return clientStandInKey(client.id, row.subject, scopesOnServer(deps.signInScopes(), server));
    },
  };
}
