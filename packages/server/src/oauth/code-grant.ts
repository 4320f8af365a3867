import { createHash, timingSafeEqual } from "node:crypto";
import { mcpServerOfResource } from "../auth/mcp-resource.js";
import { firstUncovered } from "../auth/scopes.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { hashSecret } from "../crypto/secret-format.js";
import type { KeyEntry } from "../keys/key-entry.js";
import type { PresentedClient } from "../tokens/client-auth.js";
import { OAuthError } from "../tokens/oauth-errors.js";
import { required } from "../tokens/oauth-form.js";
import { GRANT_AUTHORIZATION_CODE } from "../tokens/token-routes.js";
import type { RequestMeta, TokenResponse, TokensService } from "../tokens/tokens-service.js";
import type { AuthorizationStore } from "./authorization-store.js";
import { scopesOnServer } from "./granted-scopes.js";
import { clientStandInKey, type OAuthClients } from "./oauth-clients.js";

/** RFC 7636 §4.1: 43 to 128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
/** Our codes: 43 base62 characters (authorization-flow.ts). */
export const CODE_SHAPE = /^[0-9A-Za-z]{43}$/;

export interface CodeGrantDeps {
  store: AuthorizationStore;
  clients: OAuthClients;
  integrity: IntegrityKeys;
  tokens: Pick<TokensService, "issueTracked" | "revokeIssued">;
  issuer: () => string;
  now: () => number;
  serverExists: (name: string) => boolean;
  signInScopes: () => readonly string[];
}

/** S256 (RFC 7636 §4.2): BASE64URL(SHA256(verifier)). */
export function s256(verifier: string): string {
  return createHash("sha256").update(verifier, "ascii").digest("base64url");
}

/** The verifier matches the challenge under S256, compared in constant time. */
export function pkceHolds(verifier: string, challenge: string): boolean {
  const computed = Buffer.from(s256(verifier));
  const given = Buffer.from(challenge);
  return computed.length === given.length && timingSafeEqual(computed, given);
}

/**
 * `grant_type=authorization_code` (RFC 6749 §4.1.3, PKCE RFC 7636, RFC 8707): the code is bound
 * to its client, redirect URI, PKCE challenge, resource, scopes and user. Every check happens
 * before the code is spent, so a refused request changes nothing; a code presented after it was
 * spent revokes what was issued from it (RFC 6749 §4.1.2) and is refused.
 */
export function createCodeGrant(deps: CodeGrantDeps) {
  return async function codeGrant(
    params: Map<string, string>,
    presented: PresentedClient | undefined,
    meta: RequestMeta,
  ): Promise<TokenResponse> {
    const client = await deps.clients.authenticate(presented, params.get("client_id"));
    if (!client.grant_types.includes(GRANT_AUTHORIZATION_CODE)) {
      throw new OAuthError("unauthorized_client", "this client is not registered for authorization_code");
    }
    const code = required(params, "code");
    const redirectUri = required(params, "redirect_uri");
    const verifier = params.get("code_verifier");
    if (verifier === undefined || !VERIFIER.test(verifier)) {
      throw new OAuthError("invalid_grant", "code_verifier: required, 43 to 128 unreserved characters (RFC 7636)");
    }
    const hash = CODE_SHAPE.test(code) ? hashSecret(code, deps.integrity) : undefined;
    const row = hash === undefined ? undefined : await deps.store.getCode(hash);
    if (!row || hash === undefined) throw new OAuthError("invalid_grant", "the authorization code is not valid");
    if (row.used_at !== null) {
      // A replay: the code leaked or was double-spent. What it gave is revoked (RFC 9700 §4.5).
      if (row.jti !== null && row.jti_expires_at !== null) {
        await deps.tokens.revokeIssued(
          { jti: row.jti, expMs: row.jti_expires_at, family: row.family },
          { actor: row.user_id, clientId: row.client_id },
          meta,
        );
      }
      throw new OAuthError("invalid_grant", "the authorization code was already used; what it issued is revoked");
    }
    if (row.expires_at <= deps.now()) throw new OAuthError("invalid_grant", "the authorization code has expired");
    if (row.client_id !== client.id) throw new OAuthError("invalid_grant", "the code was issued to another client");
    if (row.redirect_uri !== redirectUri) {
      throw new OAuthError("invalid_grant", "redirect_uri differs from the authorization request's");
    }
    if (!pkceHolds(verifier, row.code_challenge)) {
      throw new OAuthError("invalid_grant", "code_verifier does not match the code_challenge");
    }
    const resource = params.get("resource");
    if (resource !== undefined && resource !== row.resource) {
      throw new OAuthError("invalid_target", "resource differs from the authorization request's");
    }
    const server = mcpServerOfResource(deps.issuer(), row.resource);
    if (server === undefined || !deps.serverExists(server)) {
      throw new OAuthError("invalid_target", "the code's resource is not an MCP server here any more");
    }
    // The user's scopes as the configuration grants them now: the code's must still be covered.
    const key: KeyEntry = clientStandInKey(client.id, row.user_id, scopesOnServer(deps.signInScopes(), server));
    const scopes = row.scope.split(" ").filter(Boolean);
    if (firstUncovered(key.scopeSet, scopes) !== undefined) {
      throw new OAuthError("invalid_scope", "the user may no longer hold the scopes this code was issued for");
    }
    if (!(await deps.store.spendCode(hash, deps.now()))) {
      throw new OAuthError("invalid_grant", "the authorization code was already used");
    }
    const issued = await deps.tokens.issueTracked(
      key,
      { scopes, resource: row.resource, grant: GRANT_AUTHORIZATION_CODE },
      meta,
      client.grant_types.includes("refresh_token"),
    );
    await deps.store.recordIssued(hash, { jti: issued.jti, expiresAt: issued.expMs, family: issued.family });
    void deps.clients.touch(client.id).catch(() => {});
    return issued.response;
  };
}

export type CodeGrant = ReturnType<typeof createCodeGrant>;
