import type { AuditEventInput, AuditSink } from "../audit/audit-sink.js";
import type { CallerAuth } from "../auth/caller-auth.js";
import type { ChangeFeed } from "../cluster/change-feed.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { upgradeLegacySecret } from "../crypto/legacy-hashes.js";
import { generateSecret, hashSecret, newId } from "../crypto/secret-format.js";
import type { KeyEntry } from "../keys/key-entry.js";
import type { KeyRateLimit } from "../limits/limits.js";
import type { Db } from "../store/db.js";
import type { AccessTokens } from "./access-tokens.js";
import type { RefreshTokenRow, RefreshTokensStore } from "./refresh-tokens-store.js";
import type { TokenRevocations } from "./token-revocations.js";

// What the parts of the tokens service share (tokens-service.ts composes them): its types and
// dependencies, and how a refresh token is made and found.

export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  scope: string;
  refresh_token?: string;
  issued_token_type?: string;
}

/** Where a token request came from, for the audit trail. */
export interface RequestMeta {
  ip: string;
  requestId: string;
}

export interface TokensConfig {
  /** Upper bound of an access token's lifetime, seconds. */
  maxLifetimeS: number;
  /** A refresh token's lifetime, seconds (bounded by its key's expiry). */
  refreshLifetimeS: number;
  /** The longest `act` chain a token exchange may produce. */
  maxActDepth: number;
  /**
   * Live refresh-token families one key may hold; a new one beyond it revokes the least recently
   * used (default 1,000). Each grant with a refresh token starts a family, so without a cap a
   * key could fill the store.
   */
  maxRefreshFamilies?: number;
}

/** SPEC §5 does not bound families; this does (docs/operations.md, "Token endpoints"). */
export const DEFAULT_MAX_REFRESH_FAMILIES = 1000;

export interface TokensDeps {
  db: Db;
  now: () => number;
  audit: AuditSink;
  access: AccessTokens;
  refresh: RefreshTokensStore;
  /** Refresh tokens are stored keyed, like API keys (crypto/secret-format.ts hashSecret). */
  integrity: IntegrityKeys;
  revocations: TokenRevocations;
  /** Who is calling and whether a key may be used (auth/caller-auth.ts). */
  auth: CallerAuth;
  agentExists: (name: string) => Promise<boolean>;
  changes: ChangeFeed;
  issuer: () => string;
  config: TokensConfig;
  onIssue?: (kind: "access" | "refresh" | "exchange") => void;
  /** The key's rate limit as the gateway counts it (gateway/limits.ts); none: not counted. */
  rateLimit?: KeyRateLimit;
  /**
   * Registered OAuth clients (oauth/): the stand-in key a refresh token issued to one rests on
   * (the client must still exist; the user's scopes are those the configuration grants now).
   * Absent: such refresh tokens are refused.
   */
  registeredClients?: RegisteredClientRefresh;
  /** Told after a refresh token was presented twice (its family is revoked): a stolen token's sign. */
  onRefreshReuse?: (reuse: RefreshReuse) => void;
}

export interface RegisteredClientRefresh {
  /** Throws `OAuthError` when the token's client or resource is gone, or its user may hold nothing there. */
  refreshKey(row: RefreshTokenRow): Promise<KeyEntry>;
}

/** A refresh token used a second time: the key it was issued to, its family, where from. */
export interface RefreshReuse {
  keyId: string;
  subject: string;
  family: string;
  ip: string;
}

export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

/** Refresh-token rows: a new one for a key (a new family unless one is named), and lookup by secret. */
export function createRefreshRows(deps: TokensDeps) {
  const { db, now, refresh, config } = deps;

  async function newRefreshToken(key: KeyEntry, scopes: readonly string[], audience: string | null, family?: string) {
    const secret = generateSecret("kwr");
    const t = now();
    let expiresAt = t + config.refreshLifetimeS * 1000;
    if (key.expiresAt !== null) expiresAt = Math.min(expiresAt, key.expiresAt);
    const row = {
      id: newId("rt"),
      hash: hashSecret(secret, deps.integrity),
      family: family ?? newId("rtf"),
      key_id: key.id,
      subject: key.owner,
      scope: scopes.join(" "),
      audience,
      created_at: t,
      expires_at: expiresAt,
      used_at: null,
      revoked_at: null,
    };
    return { secret, row };
  }

  /**
   * The row of a refresh token: by its keyed hash, or (tokens issued before keyed refresh hashes,
   * marked at that upgrade: crypto/legacy-hashes.ts) by its plain one, re-hashed on this first use.
   * A row inserted with plain SHA-256 after the upgrade carries no valid mark: never found.
   */
  async function findRefresh(secret: string) {
    const keyed = hashSecret(secret, deps.integrity);
    const row = await refresh.getByHash(keyed);
    if (row) return row;
    return (await upgradeLegacySecret(db, deps.integrity, "refresh_tokens", secret))
      ? refresh.getByHash(keyed)
      : undefined;
  }

  return { newRefreshToken, findRefresh };
}

export type RefreshRows = ReturnType<typeof createRefreshRows>;

export function revokeEvent(
  actor: string,
  keyId: string,
  meta: RequestMeta,
  details: Record<string, unknown>,
): AuditEventInput {
  return {
    actor,
    action: "token.revoke",
    target: keyId,
    outcome: "success",
    ip: meta.ip,
    requestId: meta.requestId,
    details,
  };
}
