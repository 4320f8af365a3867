import type { IncomingHttpHeaders } from "node:http";
import type { BlockList } from "node:net";
import { KeywardError } from "../errors.js";
import { presentedCredential } from "../gateway/authorize.js";
import { clientIp, ipMatches } from "../gateway/cidr.js";
import type { KeyEntry } from "../keys/key-entry.js";
import { isIssuerClientId } from "./issuer-client.js";

/** Who is calling a Keyward API endpoint (not the gateway): a key's owner or a token's subject. */
export interface Caller {
  /** `consumer:<name>`, `agent:<name>`, `user:<id>`. */
  principal: string;
  /** The key the credential came from (for a token: its `client_id`). */
  keyId: string;
  scopes: readonly string[];
  via: "key" | "token";
  /** For tokens: the verified claims. */
  claims?: AccessClaims;
}

export interface AccessClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  scope: string;
  act?: ActLink;
  [claim: string]: unknown;
}

/** RFC 8693 `act`: the actor, and who it acted for in turn (nested for longer chains). */
export interface ActLink {
  sub: string;
  client_id?: string;
  act?: ActLink;
}

/** Verifies one of Keyward's own access tokens; denials are data. */
export type AccessTokenCheck = (
  token: string,
) => { ok: true; claims: AccessClaims } | { ok: false; code: "invalid_token" | "token_expired"; message: string };

export interface CallerAuthDeps {
  lookupKey: (secret: string) => Promise<KeyEntry | null | "malformed">;
  /** Absent until the token service is wired: every token is then `invalid_token`. */
  checkToken?: AccessTokenCheck;
  /** The keys a token names (its client and actors): each must still be usable. */
  keyById?: (id: string) => Promise<KeyEntry | null>;
  /** Proxies whose X-Forwarded-For is believed when applying a key's `ip_allow`. */
  trustedProxies?: BlockList | null;
  now: () => number;
}

/**
 * Authenticates the caller of an API endpoint from `Authorization: Bearer <kwk_… | token>` or
 * `X-API-Key`. Throws the SPEC §4 error (401) when there is no valid credential; what the caller
 * may do is the endpoint's decision.
 */
export function createCallerAuth(deps: CallerAuthDeps) {
  /** A key's IP allowlist applies to the key and to every token minted from it. */
  function assertIpAllowed(key: KeyEntry, headers: IncomingHttpHeaders, peerIp: string | undefined): void {
    if (!key.ipAllow) return;
    const ip =
      peerIp === undefined ? undefined : clientIp(peerIp, headers["x-forwarded-for"], deps.trustedProxies ?? null);
    if (ip === undefined || !ipMatches(key.ipAllow, ip)) {
      throw new KeywardError("ip_denied", "the caller's IP address is not allowed for this key");
    }
  }

  /**
   * @param peerIp the TCP peer's address: without it, a key with an IP allowlist is refused.
   */
  return async function authenticate(headers: IncomingHttpHeaders, peerIp?: string): Promise<Caller> {
    const credential = presentedCredential(headers);
    if (credential === undefined) {
      throw new KeywardError("missing_credentials", "send Authorization: Bearer <key or token> or X-API-Key");
    }
    if (credential.asKey) {
      const key = await deps.lookupKey(credential.value);
      if (key === null || key === "malformed") throw new KeywardError("invalid_key", "the API key is not valid");
      assertUsable(key, deps.now());
      assertIpAllowed(key, headers, peerIp);
      return { principal: key.owner, keyId: key.id, scopes: key.scopes, via: "key" };
    }
    const checked = deps.checkToken?.(credential.value);
    if (!checked) throw new KeywardError("invalid_token", "the bearer value is not a valid access token");
    if (!checked.ok) throw new KeywardError(checked.code, checked.message);
    const { claims } = checked;
    // Revoking or freezing the client key, or any actor's key in the chain, ends the token. A
    // trusted issuer's client id names no key (issuer-client.ts): its tokens end by jti revocation.
    if (deps.keyById) {
      const ids = [claims.client_id];
      for (let act = claims.act; act !== undefined; act = act.act) if (act.client_id) ids.push(act.client_id);
      for (const id of ids) {
        if (isIssuerClientId(id)) continue;
        const key = await deps.keyById(id);
        if (key === null || key.status !== "active" || (key.expiresAt !== null && key.expiresAt <= deps.now())) {
          throw new KeywardError("invalid_token", "the access token is no longer valid: its key is not active");
        }
        if (id === claims.client_id) assertIpAllowed(key, headers, peerIp);
      }
    }
    return {
      principal: claims.sub,
      keyId: claims.client_id,
      scopes: claims.scope ? claims.scope.split(" ") : [],
      via: "token",
      claims,
    };
  };
}

/** A key that exists but may not be used right now fails with its SPEC §4 code. */
export function assertUsable(key: KeyEntry, now: number): void {
  if (key.status === "revoked") throw new KeywardError("key_revoked", "the API key has been revoked");
  if (key.status === "frozen") throw new KeywardError("key_frozen", "the API key is frozen");
  if (key.expiresAt !== null && key.expiresAt <= now) throw new KeywardError("key_expired", "the API key has expired");
}

export type CallerAuth = ReturnType<typeof createCallerAuth>;
