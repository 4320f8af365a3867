import { createHash } from "node:crypto";
import type { KeyEntry } from "../keys/key-entry.js";
import type { CheckedToken } from "./checked-token.js";

/**
 * A user token minted from a trusted issuer's JWT (SPEC §8) rests on no Keyward key, yet every
 * access token names its client in `client_id`, and the chain check (caller-auth.ts)
 * requires each named key to be usable. Such tokens
 * carry `idp:<hash of the issuer>` instead (and tokens of registered OAuth clients `oac_…`, below):
 * key ids are `key_<base62>`, so the prefixes keep them apart, and only tokens we signed carry a
 * `client_id` at all, so nobody can claim one. Chain checks skip these ids; such a token is still
 * ended one by one through jti revocation.
 */
export const ISSUER_CLIENT_PREFIX = "idp:";

export function issuerClientId(issuer: string): string {
  return `${ISSUER_CLIENT_PREFIX}${createHash("sha256").update(issuer).digest("base64url").slice(0, 16)}`;
}

/**
 * Clients registered at the authorization endpoint's registration (RFC 7591, tokens/oauth-clients):
 * MCP clients signing their users in. Their tokens rest on no key either: a client has no state a
 * token could outlive (its refresh is refused once the client is gone), and the user behind it
 * signed in at a trusted issuer.
 */
export const OAUTH_CLIENT_PREFIX = "oac_";

/** A token's `client_id` that names no Keyward key: a trusted issuer's (`idp:…`) or a registered OAuth client's. */
export function isKeylessClientId(id: string): boolean {
  return id.startsWith(ISSUER_CLIENT_PREFIX) || id.startsWith(OAUTH_CLIENT_PREFIX);
}

const virtualKeys = new WeakMap<CheckedToken, KeyEntry>();

/**
 * A key entry for a client that is no key (a trusted issuer, a registered OAuth client): its id,
 * the user it acts for as owner, those scopes, active until `expiresAt` (ms, or never), and no
 * rate limit, quota or IP allowlist (an identity provider's users have no key to configure them
 * on). The one shape of such stand-ins, for the gateway and the token endpoint alike.
 */
export function standInKey(
  clientId: string,
  owner: string,
  scopes: readonly string[],
  expiresAt: number | null,
  scopeSet: ReadonlySet<string> = new Set(scopes),
): KeyEntry {
  return {
    id: clientId,
    prefix: clientId,
    owner,
    scopes,
    scopeSet,
    status: "active",
    expiresAt,
    rateLimit: null,
    quota: null,
    ipAllow: null,
    ipSeen: new Map(),
    canary: false,
    rotatedTo: null,
    lineage: clientId,
  };
}

/**
 * The gateway meters and audits by the client key. For a token resting on no key that is a
 * stand-in built from the token itself, active until the token expires. Kept per verified token,
 * so the hot path allocates it once.
 */
export function issuerClientKey(token: CheckedToken): KeyEntry {
  let entry = virtualKeys.get(token);
  if (entry === undefined) {
    entry = standInKey(token.claims.client_id, token.claims.sub, token.scopes, token.expMs, token.scopeSet);
    virtualKeys.set(token, entry);
  }
  return entry;
}
