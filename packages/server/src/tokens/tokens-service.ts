import type { AuditEventInput, AuditSink } from "../audit/audit-sink.js";
import type { AuthResult, CallerAuth } from "../auth/caller-auth.js";
import type { ChangeFeed } from "../cluster/change-feed.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { KeywardError } from "../errors.js";
import type { KeyEntry } from "../keys/key-entry.js";
import { generateSecret, hashSecret, isWellFormed, newId } from "../keys/key-format.js";
import { upgradeLegacySecret } from "../keys/legacy-hashes.js";
import type { KeyRateLimit } from "../limits/limits.js";
import { rateLimitHeaders } from "../limits/rate-limiter.js";
import { LimiterUnavailableError } from "../limits/shared-limits.js";
import type { Db } from "../store/db.js";
import type { AccessTokens } from "./access-tokens.js";
import { OAuthError } from "./oauth-errors.js";
import type { RefreshTokensStore } from "./refresh-tokens-store.js";
import { covers, firstUncovered } from "./scopes.js";
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
  /** Refresh tokens are stored keyed, like API keys (keys/key-format.ts hashSecret). */
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
  /** Told after a refresh token was presented twice (its family is revoked): a stolen token's sign. */
  onRefreshReuse?: (reuse: RefreshReuse) => void;
}

/** A refresh token used a second time: the key it was issued to, its family, where from. */
export interface RefreshReuse {
  keyId: string;
  subject: string;
  family: string;
  ip: string;
}

export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

/**
 * Access and refresh tokens for API keys (SPEC §5): issue, refresh with rotation and reuse
 * detection (RFC 9700 §4.14), introspection (RFC 7662) and revocation (RFC 7009).
 * Token exchange lives in token-exchange.ts.
 */
export function createTokensService(deps: TokensDeps) {
  const { db, now, audit, access, refresh, config } = deps;

  function lifetime(requestedS: number | undefined, key: KeyEntry): { exp: number; expiresIn: number } {
    const nowS = Math.floor(now() / 1000);
    let exp = nowS + Math.min(requestedS ?? config.maxLifetimeS, config.maxLifetimeS);
    if (key.expiresAt !== null) exp = Math.min(exp, Math.floor(key.expiresAt / 1000));
    return { exp, expiresIn: Math.max(0, exp - nowS) };
  }

  /**
   * Minting counts against the key's rate limit, in the gateway's bucket: a key limited to N
   * requests a minute cannot mint tokens (each a fresh signature and store write) without bound.
   * RFC 6749 has no rate-limit code: refused as 429 `invalid_request` with `Retry-After`.
   */
  async function countMint(key: KeyEntry): Promise<void> {
    if (!deps.rateLimit || !key.rateLimit) return;
    let rate: Awaited<ReturnType<KeyRateLimit>>;
    try {
      rate = await deps.rateLimit(key, now());
    } catch (err) {
      if (!(err instanceof LimiterUnavailableError)) throw err;
      throw new KeywardError("rate_limit_unavailable", "rate limits cannot be checked right now; try again");
    }
    if (rate && !rate.allowed) {
      throw new OAuthError("invalid_request", "rate limit exceeded", {
        status: 429,
        headers: { "retry-after": String(rate.resetS), ...rateLimitHeaders(rate) },
      });
    }
  }

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
   * marked at that upgrade: keys/legacy-hashes.ts) by its plain one, re-hashed on this first use.
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
    // A token for one agent only: that agent must exist. (Calling it through the gateway still
    // takes `agent:<name>` among the token's scopes; a tool's user token needs none.)
    if (opts.audience !== undefined && !(await deps.agentExists(opts.audience))) {
      throw new OAuthError("invalid_target", `no agent named ${opts.audience}`);
    }
    const aud = opts.audience ?? deps.issuer();
    const { exp, expiresIn } = lifetime(opts.lifetimeS, key);
    if (expiresIn <= 0) throw new OAuthError("invalid_grant", "the key expires too soon to issue a token");
    const { token, claims } = access.mint({ sub: key.owner, aud, scopes, clientId: key.id, exp });
    let refreshSecret: string | undefined;
    if (withRefresh) {
      const fresh = await newRefreshToken(key, scopes, opts.audience ?? null, opts.family);
      // Not fsynced: after a power cut the client re-authenticates with its key. Audited below.
      const cap = config.maxRefreshFamilies ?? DEFAULT_MAX_REFRESH_FAMILIES;
      await db.transaction(
        async (tx) => {
          await refresh.insert(tx, fresh.row);
          if (opts.family !== undefined) return; // a rotation: no new family
          for (const family of await refresh.familiesOverCap(tx, key.id, now(), cap)) {
            await refresh.revokeFamily(tx, family, now());
            await audit.recordIn(tx, revokeEvent(key.owner, key.id, meta, { kind: "refresh", family, reason: "cap" }));
          }
        },
        { durable: false },
      );
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

    /** `POST /v1/auth/token` and the client_credentials grant. */
    async issueForKey(
      key: KeyEntry,
      opts: { lifetimeS?: number; scopes?: string[]; audience?: string; grant: string },
      meta: RequestMeta,
      withRefresh: boolean,
    ): Promise<TokenResponse> {
      await countMint(key);
      return issue(key, opts, meta, withRefresh);
    },

    /**
     * The refresh_token grant: the old token dies and a new one of the same family is returned.
     * A token presented again after use means it leaked (or a client double-spent it): the whole
     * family is revoked and the event audited.
     */
    async refresh(
      secret: string,
      /** The authenticated client, or a bare `client_id` the body named without a secret. */
      client: KeyEntry | string | undefined,
      opts: { scopes?: string[] },
      meta: RequestMeta,
    ): Promise<TokenResponse> {
      if (!isWellFormed(secret, "kwr")) throw new OAuthError("invalid_grant", "the refresh token is not valid");
      const row = await findRefresh(secret);
      if (!row) throw new OAuthError("invalid_grant", "the refresh token is not valid");
      const clientId = typeof client === "string" ? client : client?.id;
      if (clientId !== undefined && clientId !== row.key_id) {
        throw new OAuthError("invalid_grant", "the refresh token was not issued to this client");
      }
      if (row.revoked_at !== null) throw new OAuthError("invalid_grant", "the refresh token has been revoked");
      if (row.expires_at <= now()) throw new OAuthError("invalid_grant", "the refresh token has expired");
      // The refresh token's holder is its key's holder: the key's state and allowlist apply.
      const judged = await deps.auth.keyById(row.key_id, meta.ip);
      if (!judged.ok) throw new OAuthError("invalid_grant", `the refresh token's key: ${judged.message}`);
      const key = judged.caller.key;
      const held = row.scope.split(" ").filter(Boolean);
      const scopes = opts.scopes ?? held;
      const missing = firstUncovered(held, scopes);
      if (missing !== undefined)
        throw new OAuthError("invalid_scope", `the refresh token does not hold scope ${missing}`);
      // Counted before the token is spent: a refused refresh leaves it usable.
      await countMint(key);

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
      if (reused) {
        deps.onRefreshReuse?.({ keyId: row.key_id, subject: row.subject, family: row.family, ip: meta.ip });
        throw new OAuthError("invalid_grant", "the refresh token was already used; its family is revoked");
      }

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
      const agent = caller.owner.slice("agent:".length);
      if (token.startsWith("kwr_")) {
        if (!isWellFormed(token, "kwr")) return inactive;
        const row = await findRefresh(token);
        if (!row || row.key_id !== caller.id || row.used_at !== null || row.revoked_at !== null) return inactive;
        if (row.expires_at <= now() || !(await deps.auth.keyById(row.key_id, null)).ok) return inactive;
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
      if (!checked.ok) return inactive;
      // Active for this agent where the gateway would accept it for this agent: meant for it, or
      // for Keyward with the agent among its effective scopes (the key's current ones).
      const judged: AuthResult = await deps.auth.checked(checked.token, { kind: "gateway", agent }, null);
      if (!judged.ok) return inactive;
      const { scopes, scopeSet } = judged.caller;
      if (!checked.token.audiences.includes(agent) && !covers(scopeSet, `agent:${agent}`)) return inactive;
      return { active: true, token_type: "Bearer", ...checked.token.claims, scope: scopes.join(" ") };
    },

    /**
     * RFC 7009: revokes a refresh token (its whole family) or an access token (by jti, on every
     * replica), for the authenticated client it was issued to, or for the `holder` who presented
     * the access token itself (token-routes.ts says why). Unknown, invalid or someone else's
     * tokens are answered the same way: silently.
     */
    async revoke(token: string, by: KeyEntry | "holder", meta: RequestMeta): Promise<void> {
      if (token.startsWith("kwr_")) {
        // A refresh token is bound to its key: only that key's authentication revokes it.
        if (by === "holder" || !isWellFormed(token, "kwr")) return;
        const row = await findRefresh(token);
        if (!row || by.id !== row.key_id) return;
        await db.transaction(async (tx) => {
          const n = await refresh.revokeFamily(tx, row.family, now());
          if (n > 0) {
            await audit.recordIn(tx, revokeEvent(by.owner, row.key_id, meta, { kind: "refresh", family: row.family }));
          }
        });
        return;
      }
      const checked = access.check(token);
      // An expired token needs no revocation; an invalid one cannot be ours.
      if (!checked.ok) return;
      const { claims, expMs } = checked.token;
      if (by !== "holder" && by.id !== claims.client_id && by.owner !== claims.sub) return;
      const actor = by === "holder" ? claims.sub : by.owner;
      const change = { kind: "token_revocation" as const, ref: claims.jti };
      await db.transaction(async (tx) => {
        await deps.revocations.insert(tx, claims.jti, expMs);
        await deps.changes.record(tx, change);
        await audit.recordIn(tx, revokeEvent(actor, claims.client_id, meta, { kind: "access", jti: claims.jti }));
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
