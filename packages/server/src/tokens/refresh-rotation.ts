import { OAUTH_CLIENT_PREFIX } from "../auth/issuer-client.js";
import { firstUncovered } from "../auth/scopes.js";
import { isWellFormed } from "../crypto/secret-format.js";
import type { KeyEntry } from "../keys/key-entry.js";
import { OAuthError } from "./oauth-errors.js";
import type { TokenMinter } from "./token-minting.js";
import type { RefreshRows, RequestMeta, TokenResponse, TokensDeps } from "./tokens-core.js";

/** The refresh_token grant (rotation with reuse detection), built on the shared rows and minter. */
export function refreshRotation(deps: TokensDeps, rows: RefreshRows, minter: TokenMinter) {
  const { db, now, audit, refresh } = deps;
  const { newRefreshToken, findRefresh } = rows;
  const { countMint, issue } = minter;

  /**
   * The refresh_token grant: the old token dies and a new one of the same family is returned.
   * A token presented again after use means it leaked (or a client double-spent it): the whole
   * family is revoked and the event audited.
   */
  return async function refreshGrant(
    secret: string,
    /** The authenticated client, or a bare `client_id` the body named without a secret. */
    client: KeyEntry | string | undefined,
    opts: { scopes?: string[]; resource?: string },
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
    const registered = row.key_id.startsWith(OAUTH_CLIENT_PREFIX);
    let key: KeyEntry;
    if (registered) {
      // A registered client's token: the client named itself (a public one by its client_id
      // alone), is bound to the resource it was issued for (RFC 8707), and rests on no key.
      if (clientId === undefined) throw new OAuthError("invalid_request", "client_id: required");
      if (opts.resource !== undefined && opts.resource !== row.audience) {
        throw new OAuthError("invalid_target", "the refresh token was issued for another resource");
      }
      if (!deps.registeredClients) throw new OAuthError("invalid_grant", "the refresh token is not valid");
      key = await deps.registeredClients.refreshKey(row);
    } else {
      // The refresh token's holder is its key's holder: the key's state and allowlist apply.
      const judged = await deps.auth.keyById(row.key_id, meta.ip);
      if (!judged.ok) throw new OAuthError("invalid_grant", `the refresh token's key: ${judged.message}`);
      key = judged.caller.key;
    }
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

    const bound = row.audience ? (registered ? { resource: row.audience } : { audience: row.audience }) : {};
    const response = await issue(key, { scopes, grant: "refresh_token", ...bound }, meta, false);
    deps.onIssue?.("refresh");
    return { ...response, refresh_token: fresh.secret };
  };
}
