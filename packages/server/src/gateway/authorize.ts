import type { IncomingHttpHeaders } from "node:http";
import type { RoutableAgent } from "../agents/agents-service.js";
import type { AuthResult, CallerAuth } from "../auth/caller-auth.js";
import type { CheckedToken } from "../auth/checked-token.js";
import { isKeylessClientId } from "../auth/issuer-client.js";
import type { ErrorCode } from "../errors.js";
import type { KeyEntry, QuotaPolicy } from "../keys/key-entry.js";
import { type RateLimiter, type RateLimitResult, rateLimitHeaders } from "../limits/rate-limiter.js";
import { LimiterUnavailableError, type LimitsOutcome, type SharedLimits } from "../limits/shared-limits.js";
import type { QuotaResult, UsageTracker } from "../limits/usage.js";

export type Decision =
  | {
      ok: true;
      key: KeyEntry;
      agent: RoutableAgent;
      ip: string;
      rate: RateLimitResult | undefined;
      /** What the caller may do now (a token's scopes narrowed to its key's current ones). */
      scopes: readonly string[];
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
  /** Who is calling and whether the credential may be used here (auth/caller-auth.ts). */
  auth: CallerAuth;
  cachedAgent: (name: string) => RoutableAgent | null | undefined;
  loadAgent: (name: string) => Promise<RoutableAgent | null>;
  rateLimiter: RateLimiter;
  usage: UsageTracker;
  /** With Redis or a primary's bank: limits and quotas shared across processes; else the two above. */
  sharedLimits?: SharedLimits;
  now: () => number;
}

type Deny = Extract<Decision, { ok: false }>;

function deny(ip: string, code: ErrorCode, message: string, key?: KeyEntry, headers?: Record<string, string>): Deny {
  return { ok: false, code, message, ip, ...(key ? { key } : {}), ...(headers ? { headers } : {}) };
}

/**
 * Every gateway check, in the order SPEC §4 fixes: the caller (auth/caller-auth.ts, the same
 * module every other route uses), then its scope for the agent, the agent, the rate limit and the
 * quota. Denials are returned as data; only infrastructure failures (store down) throw.
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
  const auth = deps.auth.authenticate(req, { kind: "gateway", agent: agentName });
  if (auth instanceof Promise) return auth.then((a) => authorized(deps, a, agentName));
  return authorized(deps, auth, agentName);
}

function authorized(deps: AuthorizeDeps, auth: AuthResult, agentName: string): Decision | Promise<Decision> {
  if (!auth.ok)
    return auth.key ? deny(auth.ip, auth.code, auth.message, auth.key) : deny(auth.ip, auth.code, auth.message);
  const { caller, ip } = auth;
  const key = caller.key;
  if (!caller.scopeSet.has(`agent:${agentName}`) && !caller.scopeSet.has("agent:*")) {
    const whose = caller.via === "token" ? "token's" : "key's";
    return deny(ip, "scope_denied", `the ${whose} scopes do not include agent:${agentName}`, key);
  }
  const now = deps.now();
  const agent = deps.cachedAgent(agentName);
  const decision =
    agent === undefined
      ? deps.loadAgent(agentName).then((a) => withAgent(deps, ip, key, agentName, a, now))
      : withAgent(deps, ip, key, agentName, agent, now);
  return decision instanceof Promise
    ? decision.then((d) => withCaller(d, caller.scopes, caller.token))
    : withCaller(decision, caller.scopes, caller.token);
}

function withCaller(decision: Decision, scopes: readonly string[], token: CheckedToken | undefined): Decision {
  if (decision.ok) {
    decision.scopes = scopes;
    if (token) decision.token = token;
  }
  return decision;
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
    // Permit leases answer from memory synchronously; only a wait on the bank is a promise.
    const outcome = deps.sharedLimits.check(key, now);
    if (outcome instanceof Promise) {
      return outcome.then(
        (o) => afterSharedLimits(deps, key, agent, ip, o),
        (err: unknown) => limitsUnavailable(ip, key, err),
      );
    }
    return afterSharedLimits(deps, key, agent, ip, outcome);
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
  if (!isKeylessClientId(key.id)) deps.usage.touch(key.id);
  return { ok: true, key, agent, ip, rate, scopes: key.scopes };
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
