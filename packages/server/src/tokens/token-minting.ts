import { firstUncovered } from "../auth/scopes.js";
import { KeywardError } from "../errors.js";
import type { KeyEntry } from "../keys/key-entry.js";
import type { KeyRateLimit } from "../limits/limits.js";
import { rateLimitHeaders } from "../limits/rate-limiter.js";
import { LimiterUnavailableError } from "../limits/shared-limits.js";
import { OAuthError } from "./oauth-errors.js";
import {
  DEFAULT_MAX_REFRESH_FAMILIES,
  type RefreshRows,
  type RequestMeta,
  revokeEvent,
  type TokenResponse,
  type TokensDeps,
} from "./tokens-core.js";

export interface IssueOptions {
  lifetimeS?: number;
  scopes?: string[];
  /** An agent the token is for (it must exist). */
  audience?: string;
  /** An RFC 8707 resource the token is bound to (an MCP server's URL), already checked by the caller. */
  resource?: string;
  grant: string;
}

/** Minting: an access token (and a refresh token when asked) for a key, within its rate limit. */
export function createTokenMinter(deps: TokensDeps, rows: RefreshRows) {
  const { db, now, audit, access, refresh, config } = deps;
  const { newRefreshToken } = rows;

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

  /**
   * Signs an access token for `key` (and a refresh token when asked) and records the issuance
   * first; also says what it issued (the jti, the refresh family), for a grant that may have to
   * revoke it later (a replayed authorization code).
   */
  async function issueTracked(
    key: KeyEntry,
    opts: IssueOptions,
    meta: RequestMeta,
    withRefresh: boolean,
  ): Promise<{ response: TokenResponse; jti: string; expMs: number; family: string | null }> {
    const scopes = opts.scopes ?? [...key.scopes];
    const missing = firstUncovered(key.scopeSet, scopes);
    if (missing !== undefined) throw new OAuthError("invalid_scope", `the key does not hold scope ${missing}`);
    // A token for one agent only: that agent must exist. (Calling it through the gateway still
    // takes `agent:<name>` among the token's scopes; a tool's user token needs none.)
    if (opts.audience !== undefined && !(await deps.agentExists(opts.audience))) {
      throw new OAuthError("invalid_target", `no agent named ${opts.audience}`);
    }
    // A resource (RFC 8707, an MCP server's URL) is the caller's to have checked: taken as is.
    const aud = opts.resource ?? opts.audience ?? deps.issuer();
    const boundTo = opts.resource ?? opts.audience ?? null;
    const { exp, expiresIn } = lifetime(opts.lifetimeS, key);
    if (expiresIn <= 0) throw new OAuthError("invalid_grant", "the key expires too soon to issue a token");
    const { token, claims } = access.mint({ sub: key.owner, aud, scopes, clientId: key.id, exp });
    let refreshSecret: string | undefined;
    let family: string | null = null;
    if (withRefresh) {
      const fresh = await newRefreshToken(key, scopes, boundTo);
      // Not fsynced: after a power cut the client re-authenticates with its key. Audited below.
      const cap = config.maxRefreshFamilies ?? DEFAULT_MAX_REFRESH_FAMILIES;
      await db.transaction(
        async (tx) => {
          await refresh.insert(tx, fresh.row);
          for (const old of await refresh.familiesOverCap(tx, key.id, now(), cap)) {
            await refresh.revokeFamily(tx, old, now());
            await audit.recordIn(
              tx,
              revokeEvent(key.owner, key.id, meta, { kind: "refresh", family: old, reason: "cap" }),
            );
          }
        },
        { durable: false },
      );
      refreshSecret = fresh.secret;
      family = fresh.row.family;
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
    const response: TokenResponse = {
      access_token: token,
      token_type: "Bearer",
      expires_in: expiresIn,
      scope: claims.scope,
      ...(refreshSecret ? { refresh_token: refreshSecret } : {}),
    };
    return { response, jti: claims.jti, expMs: exp * 1000, family };
  }

  async function issue(key: KeyEntry, opts: IssueOptions, meta: RequestMeta, withRefresh: boolean) {
    return (await issueTracked(key, opts, meta, withRefresh)).response;
  }

  return {
    countMint,
    issue,
    issueTracked,
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
  };
}

export type TokenMinter = ReturnType<typeof createTokenMinter>;
