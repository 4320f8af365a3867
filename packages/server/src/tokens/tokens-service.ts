import type { AuditEventInput, AuditSink } from "../audit/audit-sink.js";
import type { ChangeFeed } from "../cluster/change-feed.js";
import type { KeyEntry } from "../keys/key-entry.js";
import { generateSecret, hashSecret, isWellFormed, newId } from "../keys/key-format.js";
import type { Db } from "../store/db.js";
import type { AccessTokens } from "./access-tokens.js";
import { OAuthError } from "./oauth-errors.js";
import type { RefreshTokensStore } from "./refresh-tokens-store.js";
import { firstUncovered } from "./scopes.js";
import type { TokenRevocations } from "./token-revocations.js";

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
}

export interface KeyAccess {
  lookup(secret: string): Promise<KeyEntry | null | "malformed">;
  cachedById(id: string): KeyEntry | undefined;
  loadById(id: string): Promise<KeyEntry | null>;
}

export interface TokensDeps {
  db: Db;
  now: () => number;
  audit: AuditSink;
  access: AccessTokens;
  refresh: RefreshTokensStore;
  revocations: TokenRevocations;
  keys: KeyAccess;
  changes: ChangeFeed;
  issuer: () => string;
  config: TokensConfig;
  onIssue?: (kind: "access" | "refresh" | "exchange") => void;
}

export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

/** Why a key may not mint tokens right now, or undefined when it may. */
export function unusable(key: KeyEntry | null | "malformed", now: number): string | undefined {
  if (key === null || key === "malformed") return "unknown key";
  if (key.status !== "active") return `key is ${key.status}`;
  if (key.expiresAt !== null && key.expiresAt <= now) return "key has expired";
  return undefined;
}

/**
 * Access and refresh tokens for API keys (SPEC §5): issue, refresh with rotation and reuse
 * detection (RFC 9700 §4.14), introspection (RFC 7662) and revocation (RFC 7009).
 * Token exchange lives in token-exchange.ts.
 */
export function createTokensService(deps: TokensDeps) {
  const { db, now, audit, access, refresh, config } = deps;

  async function keyById(id: string): Promise<KeyEntry | null> {
    return deps.keys.cachedById(id) ?? deps.keys.loadById(id);
  }

  /** Every key a token rests on must still be usable: revoking or freezing one ends the token. */
  async function keysLive(ids: readonly string[]): Promise<boolean> {
    for (const id of ids) if (unusable(await keyById(id), now()) !== undefined) return false;
    return true;
  }

  function lifetime(requestedS: number | undefined, key: KeyEntry): { exp: number; expiresIn: number } {
    const nowS = Math.floor(now() / 1000);
    let exp = nowS + Math.min(requestedS ?? config.maxLifetimeS, config.maxLifetimeS);
    if (key.expiresAt !== null) exp = Math.min(exp, Math.floor(key.expiresAt / 1000));
    return { exp, expiresIn: Math.max(0, exp - nowS) };
  }

  async function newRefreshToken(key: KeyEntry, scopes: readonly string[], audience: string | null, family?: string) {
    const secret = generateSecret("kwr");
    const t = now();
    let expiresAt = t + config.refreshLifetimeS * 1000;
    if (key.expiresAt !== null) expiresAt = Math.min(expiresAt, key.expiresAt);
    const row = {
      id: newId("rt"),
      hash: hashSecret(secret),
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

  /** Signs an access token for `key` (and a refresh token when asked) and records the issuance first. */
  async function issue(
    key: KeyEntry,
    opts: { lifetimeS?: number; scopes?: string[]; audience?: string; grant: string; family?: string },
    meta: RequestMeta,
    withRefresh: boolean,
  ): Promise<TokenResponse> {
    const scopes = opts.scopes ?? [...key.scopes];
    const missing = firstUncovered(key.scopeSet, scopes);
    if (missing !== undefined) throw new OAuthError("invalid_scope", `the key does not hold scope ${missing}`);
    const aud = opts.audience ?? deps.issuer();
    const { exp, expiresIn } = lifetime(opts.lifetimeS, key);
    if (expiresIn <= 0) throw new OAuthError("invalid_grant", "the key expires too soon to issue a token");
    const { token, claims } = access.mint({ sub: key.owner, aud, scopes, clientId: key.id, exp });
    let refreshSecret: string | undefined;
    if (withRefresh) {
      const fresh = await newRefreshToken(key, scopes, opts.audience ?? null, opts.family);
      // Not fsynced: after a power cut the client re-authenticates with its key. Audited below.
      await db.transaction((tx) => refresh.insert(tx, fresh.row), { durable: false });
      refreshSecret = fresh.secret;
    }
    await audit.recordToken({
      actor: key.owner,
      action: "token.issue",
      target: aud,
      outcome: "success",
      ip: meta.ip,
      requestId: meta.requestId,
      details: { grant: opts.grant, jti: claims.jti, key_id: key.id, exp, refresh: withRefresh, scope: claims.scope },
    });
    deps.onIssue?.("access");
    if (withRefresh) deps.onIssue?.("refresh");
    return {
      access_token: token,
      token_type: "Bearer",
      expires_in: expiresIn,
      scope: claims.scope,
      ...(refreshSecret ? { refresh_token: refreshSecret } : {}),
    };
  }

  return {
    keyById,
    keysLive,

    /** Authenticates an API key presented as a client secret; the id must name that very key. */
    async clientKey(client: { id: string; secret: string }): Promise<KeyEntry> {
      const key = await deps.keys.lookup(client.secret);
      if (key === null || key === "malformed" || key.id !== client.id) {
        throw new OAuthError("invalid_client", "client authentication failed");
      }
      const why = unusable(key, now());
      if (why) throw new OAuthError("invalid_client", `client authentication failed: ${why}`);
      return key;
    },

    /** An API key presented as a grant (`/v1/auth/token`): any problem is `invalid_grant`. */
    async grantKey(secret: string): Promise<KeyEntry> {
      const key = await deps.keys.lookup(secret);
      const why = unusable(key, now());
      if (why || key === null || key === "malformed")
        throw new OAuthError("invalid_grant", `the API key is not usable: ${why}`);
      return key;
    },

    /** `POST /v1/auth/token` and the client_credentials grant. */
    async issueForKey(
      key: KeyEntry,
      opts: { lifetimeS?: number; scopes?: string[]; audience?: string; grant: string },
      meta: RequestMeta,
      withRefresh: boolean,
    ): Promise<TokenResponse> {
      return issue(key, opts, meta, withRefresh);
    },

    /**
     * The refresh_token grant: the old token dies and a new one of the same family is returned.
     * A token presented again after use means it leaked (or a client double-spent it): the whole
     * family is revoked and the event audited.
     */
    async refresh(
      secret: string,
      client: KeyEntry | undefined,
      opts: { scopes?: string[] },
      meta: RequestMeta,
    ): Promise<TokenResponse> {
      if (!isWellFormed(secret, "kwr")) throw new OAuthError("invalid_grant", "the refresh token is not valid");
      const row = await refresh.getByHash(hashSecret(secret));
      if (!row) throw new OAuthError("invalid_grant", "the refresh token is not valid");
      if (client && client.id !== row.key_id) {
        throw new OAuthError("invalid_grant", "the refresh token was not issued to this client");
      }
      if (row.revoked_at !== null) throw new OAuthError("invalid_grant", "the refresh token has been revoked");
      if (row.expires_at <= now()) throw new OAuthError("invalid_grant", "the refresh token has expired");
      const key = await keyById(row.key_id);
      const why = unusable(key, now());
      if (why || !key) throw new OAuthError("invalid_grant", `the refresh token's ${why ?? "key is unknown"}`);
      const held = row.scope.split(" ").filter(Boolean);
      const scopes = opts.scopes ?? held;
      const missing = firstUncovered(held, scopes);
      if (missing !== undefined)
        throw new OAuthError("invalid_scope", `the refresh token does not hold scope ${missing}`);

      const fresh = await newRefreshToken(key, scopes, row.audience, row.family);
      const reused = await db.transaction(async (tx) => {
        if (await refresh.markUsed(tx, row.id, now())) {
          await refresh.insert(tx, fresh.row);
          return false;
        }
        const revoked = await refresh.revokeFamily(tx, row.family, now());
        await audit.recordIn(tx, {
          actor: row.subject,
          action: "token.refresh_reuse",
          target: row.key_id,
          outcome: "denied",
          code: "invalid_grant",
          ip: meta.ip,
          requestId: meta.requestId,
          details: { family: row.family, revoked },
        });
        return true;
      });
      if (reused) throw new OAuthError("invalid_grant", "the refresh token was already used; its family is revoked");

      const response = await issue(
        key,
        { scopes, grant: "refresh_token", ...(row.audience ? { audience: row.audience } : {}) },
        meta,
        false,
      );
      deps.onIssue?.("refresh");
      return { ...response, refresh_token: fresh.secret };
    },

    /**
     * RFC 7662, for an agent: active only for a live token meant for that agent (its `aud` names
     * the agent, or the issuer with the agent in its scopes); anything else is `{active: false}`.
     */
    async introspect(token: string, caller: KeyEntry): Promise<Record<string, unknown>> {
      const inactive = { active: false };
      if (token.startsWith("kwr_")) {
        if (!isWellFormed(token, "kwr")) return inactive;
        const row = await refresh.getByHash(hashSecret(token));
        if (!row || row.key_id !== caller.id || row.used_at !== null || row.revoked_at !== null) return inactive;
        if (row.expires_at <= now() || !(await keysLive([row.key_id]))) return inactive;
        return {
          active: true,
          token_type: "refresh_token",
          client_id: row.key_id,
          sub: row.subject,
          scope: row.scope,
          exp: Math.floor(row.expires_at / 1000),
          iat: Math.floor(row.created_at / 1000),
        };
      }
      const checked = access.check(token);
      if (!checked.ok || !(await keysLive(checked.token.keyIds))) return inactive;
      const agent = caller.owner.slice("agent:".length);
      const { audiences, scopeSet, claims } = checked.token;
      const forCaller =
        audiences.includes(agent) ||
        (audiences.includes(deps.issuer()) && (scopeSet.has(`agent:${agent}`) || scopeSet.has("agent:*")));
      if (!forCaller) return inactive;
      return { active: true, token_type: "Bearer", ...claims };
    },

    /**
     * RFC 7009: revokes a refresh token (its whole family) or an access token (by jti, on every
     * replica). Unknown, invalid or someone else's tokens are answered the same way: silently.
     */
    async revoke(token: string, client: KeyEntry | undefined, meta: RequestMeta): Promise<void> {
      if (token.startsWith("kwr_")) {
        if (!isWellFormed(token, "kwr")) return;
        const row = await refresh.getByHash(hashSecret(token));
        if (!row || (client && client.id !== row.key_id)) return;
        await db.transaction(async (tx) => {
          const n = await refresh.revokeFamily(tx, row.family, now());
          if (n > 0) {
            await audit.recordIn(
              tx,
              revokeEvent(client?.owner ?? row.subject, row.key_id, meta, { kind: "refresh", family: row.family }),
            );
          }
        });
        return;
      }
      const checked = access.check(token);
      // An expired token needs no revocation; an invalid one cannot be ours.
      if (!checked.ok) return;
      const { claims, expMs } = checked.token;
      if (client && client.id !== claims.client_id && client.owner !== claims.sub) return;
      const change = { kind: "token_revocation" as const, ref: claims.jti };
      await db.transaction(async (tx) => {
        await deps.revocations.insert(tx, claims.jti, expMs);
        await deps.changes.record(tx, change);
        await audit.recordIn(
          tx,
          revokeEvent(client?.owner ?? claims.sub, claims.client_id, meta, { kind: "access", jti: claims.jti }),
        );
      });
      deps.revocations.remember(claims.jti, expMs);
      await deps.changes.publish([change]);
    },

    /** Refresh tokens past expiry and revocations of expired tokens are dropped. */
    async purge(): Promise<void> {
      await refresh.purgeExpired(now());
      await deps.revocations.purge();
    },
  };
}

export type TokensService = ReturnType<typeof createTokensService>;

function revokeEvent(
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
