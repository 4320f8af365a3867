import type { IncomingHttpHeaders } from "node:http";
import type { BlockList } from "node:net";
import type { RoutableAgent } from "../agents/agents-service.js";
import type { ErrorCode } from "../errors.js";
import type { KeyEntry, QuotaPolicy } from "../keys/key-entry.js";
import type { CheckedToken, TokenCheckResult } from "../tokens/access-tokens.js";
import { isIssuerClientId, issuerClientKey } from "../tokens/issuer-client.js";
import { clientIp, ipMatches } from "./cidr.js";
import { type RateLimiter, type RateLimitResult, rateLimitHeaders } from "./rate-limiter.js";
import { LimiterUnavailableError, type LimitsOutcome, type SharedLimits } from "./shared-limits.js";
import type { QuotaResult, UsageTracker } from "./usage.js";

export type Decision =
  | {
      ok: true;
      key: KeyEntry;
      agent: RoutableAgent;
      ip: string;
      rate: RateLimitResult | undefined;
      /** Set when the caller presented an access token; `key` is then the token's client key. */
      token?: CheckedToken;
    }
  | {
      ok: false;
      code: ErrorCode;
      message: string;
      ip: string;
      headers?: Record<string, string>;
      key?: KeyEntry;
    };

export interface AuthorizeDeps {
  /** Memory only: the entry, null (unknown), "malformed", or undefined when not cached yet. */
  cachedKey: (secret: string) => KeyEntry | null | "malformed" | undefined;
  /** One store read (it also fills the cache). */
  loadKey: (secret: string) => Promise<KeyEntry | null>;
  cachedAgent: (name: string) => RoutableAgent | null | undefined;
  loadAgent: (name: string) => Promise<RoutableAgent | null>;
  rateLimiter: RateLimiter;
  usage: UsageTracker;
  /** With Redis: limits and quotas global across replicas (one round trip); else the two above. */
  sharedLimits?: SharedLimits;
  trustedProxies: BlockList | null;
  now: () => number;
  /** Access tokens (memory only once a token was seen); absent → every token is invalid_token. */
  checkToken?: (token: string) => TokenCheckResult;
  /** Tokens name their keys by id. */
  cachedKeyById?: (id: string) => KeyEntry | undefined;
  loadKeyById?: (id: string) => Promise<KeyEntry | null>;
  /** A token whose `aud` is the issuer is good for any agent its scopes cover (SPEC §8). */
  issuer?: () => string;
}

/** Extracts the presented credential: `Authorization: Bearer …` or `X-API-Key`. */
export function presentedCredential(headers: IncomingHttpHeaders): { value: string; asKey: boolean } | undefined {
  const auth = headers.authorization;
  const bearer = auth === undefined ? undefined : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth)?.[1];
  if (bearer !== undefined) return { value: bearer, asKey: bearer.startsWith("kwk_") };
  const apiKey = headers["x-api-key"];
  if (typeof apiKey === "string") return { value: apiKey.trim(), asKey: true };
  // An Authorization header of another scheme is a credential we cannot accept.
  if (auth !== undefined && auth.trim() !== "") return { value: "", asKey: false };
  return undefined;
}

type Deny = Extract<Decision, { ok: false }>;

function deny(ip: string, code: ErrorCode, message: string, key?: KeyEntry, headers?: Record<string, string>): Deny {
  return { ok: false, code, message, ip, ...(key ? { key } : {}), ...(headers ? { headers } : {}) };
}

/**
 * Every gateway check, in the order SPEC §4 fixes. Denials are returned as data; only
 * infrastructure failures (store down) throw.
 *
 * On the hot path (key and agent cached, an in-memory rate limiter) this returns synchronously:
 * no promise, no await. A cache miss loads what is missing and runs the checks again; a limiter
 * or quota counter that must be awaited continues asynchronously from that step.
 */
export function authorize(
  deps: AuthorizeDeps,
  req: { headers: IncomingHttpHeaders; peerIp: string },
  agentName: string,
): Decision | Promise<Decision> {
  const ip = clientIp(req.peerIp, req.headers["x-forwarded-for"], deps.trustedProxies);
  const credential = presentedCredential(req.headers);
  if (credential === undefined) {
    return deny(ip, "missing_credentials", "send Authorization: Bearer <key or token> or X-API-Key");
  }
  if (!credential.asKey) {
    const checked = deps.checkToken?.(credential.value);
    if (!checked) return deny(ip, "invalid_token", "the bearer value is not a valid Keyward key or access token");
    if (!checked.ok) return deny(ip, checked.code, checked.message);
    return withToken(deps, ip, agentName, checked.token, undefined);
  }
  const key = deps.cachedKey(credential.value);
  if (key === undefined) return deps.loadKey(credential.value).then((k) => withKey(deps, ip, agentName, k));
  if (key === "malformed") return deny(ip, "invalid_key", "the API key is not valid");
  return withKey(deps, ip, agentName, key);
}

/**
 * An access token: its audience, then every key its authority rests on (the client key and each
 * actor's in a delegation chain) must still be usable — revoking or freezing a key ends its
 * tokens on the next request. Limits and quotas are the client key's.
 */
function withToken(
  deps: AuthorizeDeps,
  ip: string,
  agentName: string,
  token: CheckedToken,
  loaded: Map<string, KeyEntry> | undefined,
): Decision | Promise<Decision> {
  if (!token.audiences.includes(agentName) && !(deps.issuer && token.audiences.includes(deps.issuer()))) {
    return deny(ip, "invalid_token", "the access token is not meant for this agent");
  }
  const now = deps.now();
  let client: KeyEntry | undefined;
  for (const id of token.keyIds) {
    const key = deps.cachedKeyById?.(id) ?? loaded?.get(id);
    if (key === undefined) {
      if (!deps.loadKeyById) return deny(ip, "invalid_token", "the access token's key is unknown");
      return deps.loadKeyById(id).then((k) => {
        if (k === null) return deny(ip, "invalid_token", "the access token's key is unknown");
        return withToken(deps, ip, agentName, token, new Map(loaded).set(id, k));
      });
    }
    if (key.status !== "active" || (key.expiresAt !== null && key.expiresAt <= now)) {
      return deny(
        ip,
        "invalid_token",
        `the access token is no longer valid: its key is ${key.status === "active" ? "expired" : key.status}`,
        key,
      );
    }
    client ??= key;
  }
  // A user token from a trusted identity provider rests on no key: its stand-in has no limits.
  if (isIssuerClientId(token.claims.client_id)) client = issuerClientKey(token);
  if (client === undefined) return deny(ip, "invalid_token", "the access token's key is unknown");
  if (client.ipAllow && !ipAllowed(client, ip)) {
    return deny(ip, "ip_denied", "the caller's IP address is not allowed for this key", client);
  }
  if (!token.scopeSet.has(`agent:${agentName}`) && !token.scopeSet.has("agent:*")) {
    return deny(ip, "scope_denied", `the token's scopes do not include agent:${agentName}`, client);
  }
  const key = client;
  const agent = deps.cachedAgent(agentName);
  const decision =
    agent === undefined
      ? deps.loadAgent(agentName).then((a) => withAgent(deps, ip, key, agentName, a, now))
      : withAgent(deps, ip, key, agentName, agent, now);
  return decision instanceof Promise ? decision.then((d) => withTokenOf(d, token)) : withTokenOf(decision, token);
}

function withTokenOf(decision: Decision, token: CheckedToken): Decision {
  if (decision.ok) decision.token = token;
  return decision;
}

function withKey(
  deps: AuthorizeDeps,
  ip: string,
  agentName: string,
  key: KeyEntry | null,
): Decision | Promise<Decision> {
  if (key === null) return deny(ip, "invalid_key", "the API key is not valid");
  const now = deps.now();
  if (key.status === "revoked") return deny(ip, "key_revoked", "the API key has been revoked", key);
  if (key.status === "frozen") return deny(ip, "key_frozen", "the API key is frozen", key);
  if (key.expiresAt !== null && key.expiresAt <= now) return deny(ip, "key_expired", "the API key has expired", key);
  if (key.ipAllow && !ipAllowed(key, ip)) {
    return deny(ip, "ip_denied", "the caller's IP address is not allowed for this key", key);
  }
  if (!key.scopeSet.has(`agent:${agentName}`) && !key.scopeSet.has("agent:*")) {
    return deny(ip, "scope_denied", `the key's scopes do not include agent:${agentName}`, key);
  }
  const agent = deps.cachedAgent(agentName);
  if (agent === undefined) return deps.loadAgent(agentName).then((a) => withAgent(deps, ip, key, agentName, a, now));
  return withAgent(deps, ip, key, agentName, agent, now);
}

function withAgent(
  deps: AuthorizeDeps,
  ip: string,
  key: KeyEntry,
  agentName: string,
  agent: RoutableAgent | null,
  now: number,
): Decision | Promise<Decision> {
  if (agent === null) return deny(ip, "agent_not_found", `no agent named ${agentName}`, key);

  if (deps.sharedLimits && (key.rateLimit || key.quota)) {
    // Asked once per request: every continuation resumes after this step, never before it.
    return deps.sharedLimits.check(key, now).then(
      (outcome) => afterSharedLimits(deps, key, agent, ip, outcome),
      (err: unknown) => limitsUnavailable(ip, key, err),
    );
  }
  if (!key.rateLimit) return checkQuota(deps, key, agent, ip, undefined, now);
  const rate = deps.rateLimiter.hit(key.lineage, key.rateLimit, now);
  if (rate instanceof Promise) return rate.then((r) => afterRateLimit(deps, key, agent, ip, r, now));
  return afterRateLimit(deps, key, agent, ip, rate, now);
}

function afterSharedLimits(
  deps: AuthorizeDeps,
  key: KeyEntry,
  agent: RoutableAgent,
  ip: string,
  { rate, quota }: LimitsOutcome,
): Decision {
  if (rate && !rate.allowed) return rateLimited(ip, key, rate);
  if (quota && key.quota) return afterQuota(deps, key, agent, ip, rate, key.quota, quota);
  return allowed(deps, key, agent, ip, rate);
}

function rateLimited(ip: string, key: KeyEntry, rate: RateLimitResult): Deny {
  return deny(ip, "rate_limited", "rate limit exceeded", key, {
    ...rateLimitHeaders(rate),
    "retry-after": String(rate.resetS),
  });
}

function afterRateLimit(
  deps: AuthorizeDeps,
  key: KeyEntry,
  agent: RoutableAgent,
  ip: string,
  rate: RateLimitResult,
  now: number,
): Decision | Promise<Decision> {
  if (!rate.allowed) return rateLimited(ip, key, rate);
  return checkQuota(deps, key, agent, ip, rate, now);
}

function checkQuota(
  deps: AuthorizeDeps,
  key: KeyEntry,
  agent: RoutableAgent,
  ip: string,
  rate: RateLimitResult | undefined,
  now: number,
): Decision | Promise<Decision> {
  const quota = key.quota;
  if (!quota) return allowed(deps, key, agent, ip, rate);
  const q = deps.usage.check(key.lineage, quota, now);
  if (q instanceof Promise) return q.then((r) => afterQuota(deps, key, agent, ip, rate, quota, r));
  return afterQuota(deps, key, agent, ip, rate, quota, q);
}

function afterQuota(
  deps: AuthorizeDeps,
  key: KeyEntry,
  agent: RoutableAgent,
  ip: string,
  rate: RateLimitResult | undefined,
  quota: QuotaPolicy,
  q: QuotaResult,
): Decision {
  if (!q.ok) {
    return deny(ip, "quota_exceeded", `quota of ${quota.limit} per ${quota.period} exceeded`, key, {
      ...(q.retryAfterS !== null ? { "retry-after": String(q.retryAfterS) } : {}),
      ...(rate ? rateLimitHeaders(rate) : {}),
    });
  }
  return allowed(deps, key, agent, ip, rate);
}

function allowed(
  deps: AuthorizeDeps,
  key: KeyEntry,
  agent: RoutableAgent,
  ip: string,
  rate: RateLimitResult | undefined,
): Decision {
  // An identity provider's stand-in key has no row to stamp with a last-used time.
  if (!isIssuerClientId(key.id)) deps.usage.touch(key.id);
  return { ok: true, key, agent, ip, rate };
}

/**
 * The shared counter (Redis) could not answer and `rate_limit_fallback` is `closed`: a key with a
 * limit is refused rather than let through unchecked. Any other failure propagates as it is.
 */
function limitsUnavailable(ip: string, key: KeyEntry, err: unknown): Deny {
  if (!(err instanceof LimiterUnavailableError)) throw err;
  return deny(ip, "rate_limit_unavailable", "rate limits and quotas cannot be checked right now; try again", key, {
    "retry-after": "1",
  });
}

/** Allowlist decisions are cached per key and address: BlockList.check allocates on every call. */
function ipAllowed(key: KeyEntry, ip: string): boolean {
  let seen = key.ipSeen.get(ip);
  if (seen === undefined) {
    seen = key.ipAllow !== null && ipMatches(key.ipAllow, ip);
    if (key.ipSeen.size >= 256) key.ipSeen.clear();
    key.ipSeen.set(ip, seen);
  }
  return seen;
}
