import type { IncomingHttpHeaders } from "node:http";
import type { BlockList } from "node:net";
import { KeywardError } from "../errors.js";
import { clientIp } from "../http/client-ip.js";
import type { KeyEntry } from "../keys/key-entry.js";
import { audienceAccepted, audienceRefusal, type Place } from "./audience.js";
import type { CheckedToken, TokenCheckResult } from "./checked-token.js";
import { effectiveScopes } from "./effective-scopes.js";
import { isKeylessClientId, issuerClientKey } from "./issuer-client.js";
import { ipAllowed, type KeyDenialCode, keyDenial } from "./key-usability.js";
import { presentedCredential } from "./presented-credential.js";

/**
 * Who is calling, and may this credential be used here: the one implementation, for every route
 * (the gateway, forward-auth, Keyward's own endpoints, the token endpoints' key grants, and the
 * tokens an agent presents on someone's behalf). A route never re-checks any of it by hand.
 *
 * In order: a credential is present and well-formed → known → usable (key-usability.ts: not
 * revoked, frozen, expired or retired by rotation; for a token, every key it rests on) → a token's
 * audience fits the place it is presented (audience.ts) → the client key's `ip_allow` holds for
 * the request's address. What the caller may then do (scopes, grants) is the route's decision,
 * made on the effective scopes computed here (effective-scopes.ts).
 *
 * On the hot path (the key cached, the token seen before) this answers synchronously: no promise,
 * no await. A cache miss loads what is missing and runs the same checks again.
 */
export interface Caller {
  /** `consumer:<name>`, `agent:<name>`, `user:<id>`: a key's owner or a token's subject. */
  principal: string;
  /** The key the credential came from; for a token, its client key (a stand-in for an IdP's). */
  key: KeyEntry;
  keyId: string;
  via: "key" | "token";
  /** What the caller may do now: a token's scopes narrowed to its client key's current ones. */
  scopes: readonly string[];
  scopeSet: ReadonlySet<string>;
  token: CheckedToken | undefined;
  /** Every key the credential rests on (a token's client and each actor's): any change ends it. */
  keyIds: readonly string[];
  /** When the credential stops being valid by itself (ms): the earliest expiry of the token and its keys. */
  validUntil: number | null;
}

export type AuthDenialCode =
  | "missing_credentials"
  | "invalid_key"
  | KeyDenialCode
  | "invalid_token"
  | "token_expired"
  | "ip_denied";

export type AuthResult =
  | { ok: true; caller: Caller; ip: string }
  | { ok: false; code: AuthDenialCode; message: string; ip: string; key?: KeyEntry };

type Denied = Extract<AuthResult, { ok: false }>;

export interface CallerAuthDeps {
  /** Memory only: the entry, null (unknown), "malformed", or undefined when not cached yet. */
  cachedKey: (secret: string) => KeyEntry | null | "malformed" | undefined;
  /** One store read (it also fills the cache). */
  loadKey: (secret: string) => Promise<KeyEntry | null>;
  cachedKeyById: (id: string) => KeyEntry | undefined;
  loadKeyById: (id: string) => Promise<KeyEntry | null>;
  /** Verifies one of Keyward's access tokens (signature, issuer, expiry, revocation). */
  checkToken: (token: string) => TokenCheckResult;
  /** Proxies whose X-Forwarded-For is believed for the request's address. */
  trustedProxies: BlockList | null;
  issuer: () => string;
  now: () => number;
}

export interface PresentedRequest {
  headers: IncomingHttpHeaders;
  peerIp: string;
}

function deny(ip: string, code: AuthDenialCode, message: string, key?: KeyEntry): Denied {
  return key ? { ok: false, code, message, ip, key } : { ok: false, code, message, ip };
}

const keyCallers = new WeakMap<KeyEntry, Caller>();

function callerOfKey(key: KeyEntry): Caller {
  let caller = keyCallers.get(key);
  if (caller === undefined) {
    caller = {
      principal: key.owner,
      key,
      keyId: key.id,
      via: "key",
      scopes: key.scopes,
      scopeSet: key.scopeSet,
      token: undefined,
      keyIds: [key.id],
      validUntil: key.expiresAt,
    };
    keyCallers.set(key, caller);
  }
  return caller;
}

const tokenCallers = new WeakMap<CheckedToken, { keys: readonly KeyEntry[]; caller: Caller }>();

function callerOfToken(token: CheckedToken, keys: readonly KeyEntry[]): Caller {
  const hit = tokenCallers.get(token);
  if (hit !== undefined && hit.keys.length === keys.length && hit.keys.every((k, i) => k === keys[i])) {
    return hit.caller;
  }
  // keyIds lists the client first (tokens/access-tokens.ts) unless the client is an IdP's.
  const client = isKeylessClientId(token.claims.client_id) ? issuerClientKey(token) : (keys[0] as KeyEntry);
  const view = client === keys[0] ? effectiveScopes(token, client) : token;
  let validUntil = token.expMs;
  for (const k of keys) if (k.expiresAt !== null && k.expiresAt < validUntil) validUntil = k.expiresAt;
  const caller: Caller = {
    principal: token.claims.sub,
    key: client,
    keyId: token.claims.client_id,
    via: "token",
    scopes: view.scopes,
    scopeSet: view.scopeSet,
    token,
    keyIds: token.keyIds,
    validUntil,
  };
  tokenCallers.set(token, { keys, caller });
  return caller;
}

export function createCallerAuth(deps: CallerAuthDeps) {
  const requestIp = (req: PresentedRequest): string =>
    clientIp(req.peerIp, req.headers["x-forwarded-for"], deps.trustedProxies);

  /** A key presented by the caller itself: usable, and its allowlist holds for `ip`. */
  function judgeKey(key: KeyEntry | null | "malformed", ip: string): AuthResult {
    if (key === null || key === "malformed") return deny(ip, "invalid_key", "the API key is not valid");
    const why = keyDenial(key, deps.now());
    if (why) return deny(ip, why.code, why.message, key);
    if (!ipAllowed(key, ip)) return deny(ip, "ip_denied", "the caller's IP address is not allowed for this key", key);
    return { ok: true, caller: callerOfKey(key), ip };
  }

  function byKey(secret: string, ip: string): AuthResult | Promise<AuthResult> {
    const key = deps.cachedKey(secret);
    if (key === undefined) return deps.loadKey(secret).then((k) => judgeKey(k, ip));
    return judgeKey(key, ip);
  }

  /**
   * A verified token at `place`. `applyIpAllow` is false only for a token presented by the agent
   * it was handed to (`held_by`): it comes from that agent's address, and the allowlist was
   * applied where the holder used its key.
   */
  function judgeToken(
    token: CheckedToken,
    place: Place,
    ip: string,
    applyIpAllow: boolean,
    loaded: ReadonlyMap<string, KeyEntry> | undefined,
  ): AuthResult | Promise<AuthResult> {
    if (!audienceAccepted(token.audiences, place, deps.issuer())) {
      return deny(ip, "invalid_token", audienceRefusal(place));
    }
    const now = deps.now();
    const keys: KeyEntry[] = [];
    for (const id of token.keyIds) {
      const key = deps.cachedKeyById(id) ?? loaded?.get(id);
      if (key === undefined) {
        return deps
          .loadKeyById(id)
          .then((k) =>
            k === null
              ? deny(ip, "invalid_token", "the access token's key is unknown")
              : judgeToken(token, place, ip, applyIpAllow, new Map(loaded).set(id, k)),
          );
      }
      const why = keyDenial(key, now);
      if (why) {
        return deny(
          ip,
          "invalid_token",
          `the access token is no longer valid: a key it rests on is ${why.code.slice(4)}`,
          key,
        );
      }
      keys.push(key);
    }
    const caller = callerOfToken(token, keys);
    if (applyIpAllow && !ipAllowed(caller.key, ip)) {
      return deny(ip, "ip_denied", "the caller's IP address is not allowed for this key", caller.key);
    }
    return { ok: true, caller, ip };
  }

  function byToken(value: string, place: Place, ip: string, applyIpAllow: boolean): AuthResult | Promise<AuthResult> {
    const checked = deps.checkToken(value);
    if (!checked.ok) return deny(ip, checked.code, checked.message);
    return judgeToken(checked.token, place, ip, applyIpAllow, undefined);
  }

  return {
    requestIp,

    /** The request's own credential (Authorization or X-API-Key), judged for `place`. */
    authenticate(req: PresentedRequest, place: Place): AuthResult | Promise<AuthResult> {
      const ip = requestIp(req);
      const credential = presentedCredential(req.headers);
      if (credential === undefined) {
        return deny(ip, "missing_credentials", "send Authorization: Bearer <key or token> or X-API-Key");
      }
      if (credential.asKey) return byKey(credential.value, ip);
      if (credential.value === "") return deny(ip, "invalid_token", "the Authorization scheme is not Bearer");
      return byToken(credential.value, place, ip, true);
    },

    /** As `authenticate`, for routes that answer a denial with its SPEC §4 error (thrown). */
    async require(
      ctx: { req: { headers: IncomingHttpHeaders }; peerIp: string; keyId?: string | undefined },
      place: Place,
    ): Promise<Caller> {
      const result = await this.authenticate({ headers: ctx.req.headers, peerIp: ctx.peerIp }, place);
      // For the access log: the key, whether it was let in or not.
      ctx.keyId = result.ok ? result.caller.keyId : result.key?.id;
      if (!result.ok) throw new KeywardError(result.code, result.message);
      return result.caller;
    },

    /** A key presented in a request body (`api_key`, `client_secret`, a `kwk_` actor token) from `ip`. */
    key(secret: string, ip: string): AuthResult | Promise<AuthResult> {
      return byKey(secret, ip);
    },

    /**
     * A key named by id that something rests on (a refresh token's key). `ip` is the request's
     * address when the key's holder is the one asking (its allowlist applies), null when someone
     * else asks about it (an agent introspecting).
     */
    async keyById(id: string, ip: string | null): Promise<AuthResult> {
      const key = deps.cachedKeyById(id) ?? (await deps.loadKeyById(id));
      if (ip !== null) return judgeKey(key, ip);
      if (key === null) return deny("", "invalid_key", "the API key is not valid");
      const why = keyDenial(key, deps.now());
      return why ? deny("", why.code, why.message, key) : { ok: true, caller: callerOfKey(key), ip: "" };
    },

    /**
     * A token presented in a request body: an actor token (`keyward`, from the caller's own
     * address), or one held for someone else (`held_by` the presenting agent; no allowlist).
     */
    token(value: string, place: Place, ip: string): AuthResult | Promise<AuthResult> {
      return byToken(value, place, ip, place.kind !== "held_by");
    },

    /**
     * A token already verified, judged for `place`. `ip` is the request's address when the token's
     * holder presents it (the allowlist applies unless `held_by`), null when someone else asks
     * about it (an agent introspecting).
     */
    checked(token: CheckedToken, place: Place, ip: string | null): AuthResult | Promise<AuthResult> {
      return judgeToken(token, place, ip ?? "", ip !== null && place.kind !== "held_by", undefined);
    },
  };
}

export type CallerAuth = ReturnType<typeof createCallerAuth>;
