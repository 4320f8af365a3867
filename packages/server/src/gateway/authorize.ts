import type { IncomingHttpHeaders } from "node:http";
import type { BlockList } from "node:net";
import type { RoutableAgent } from "../agents/agents-service.js";
import type { ErrorCode } from "../errors.js";
import type { KeyEntry } from "../keys/key-entry.js";
import { clientIp, ipMatches } from "./cidr.js";
import { type RateLimiter, type RateLimitResult, rateLimitHeaders } from "./rate-limiter.js";
import type { UsageTracker } from "./usage.js";

export type Decision =
  | { ok: true; key: KeyEntry; agent: RoutableAgent; ip: string; rate: RateLimitResult | undefined }
  | {
      ok: false;
      code: ErrorCode;
      message: string;
      ip: string;
      headers?: Record<string, string>;
      key?: KeyEntry;
    };

export interface AuthorizeDeps {
  lookupKey: (secret: string) => Promise<KeyEntry | null | "malformed">;
  resolveAgent: (name: string) => Promise<RoutableAgent | null>;
  rateLimiter: RateLimiter;
  usage: UsageTracker;
  trustedProxies: BlockList | null;
  now: () => number;
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

/**
 * Every gateway check, in the order SPEC §4 fixes. Denials are returned as data; only
 * infrastructure failures (store down) throw.
 */
export async function authorize(
  deps: AuthorizeDeps,
  req: { headers: IncomingHttpHeaders; peerIp: string },
  agentName: string,
): Promise<Decision> {
  const ip = clientIp(req.peerIp, req.headers["x-forwarded-for"], deps.trustedProxies);
  const deny = (code: ErrorCode, message: string, key?: KeyEntry, headers?: Record<string, string>): Decision => ({
    ok: false,
    code,
    message,
    ip,
    ...(key ? { key } : {}),
    ...(headers ? { headers } : {}),
  });

  const credential = presentedCredential(req.headers);
  if (credential === undefined)
    return deny("missing_credentials", "send Authorization: Bearer <key or token> or X-API-Key");
  if (!credential.asKey) {
    // Access tokens arrive with the token endpoints; until then anything else is not a valid token.
    return deny("invalid_token", "the bearer value is not a valid Keyward key or access token");
  }
  const key = await deps.lookupKey(credential.value);
  if (key === "malformed" || key === null) return deny("invalid_key", "the API key is not valid");

  const now = deps.now();
  if (key.status === "revoked") return deny("key_revoked", "the API key has been revoked", key);
  if (key.status === "frozen") return deny("key_frozen", "the API key is frozen", key);
  if (key.expiresAt !== null && key.expiresAt <= now) return deny("key_expired", "the API key has expired", key);
  if (key.ipAllow && !ipMatches(key.ipAllow, ip))
    return deny("ip_denied", "the caller's IP address is not allowed for this key", key);
  if (!key.scopeSet.has(`agent:${agentName}`) && !key.scopeSet.has("agent:*")) {
    return deny("scope_denied", `the key's scopes do not include agent:${agentName}`, key);
  }
  const agent = await deps.resolveAgent(agentName);
  if (!agent) return deny("agent_not_found", `no agent named ${agentName}`, key);

  let rate: RateLimitResult | undefined;
  if (key.rateLimit) {
    rate = await deps.rateLimiter.hit(key.lineage, key.rateLimit, now);
    if (!rate.allowed) {
      return deny("rate_limited", "rate limit exceeded", key, {
        ...rateLimitHeaders(rate),
        "retry-after": String(rate.resetS),
      });
    }
  }
  if (key.quota) {
    const loading = deps.usage.ensureLoaded(key.lineage, key.quota, now);
    if (loading) await loading;
    const q = deps.usage.take(key.lineage, key.quota, now);
    if (!q.ok) {
      return deny("quota_exceeded", `quota of ${key.quota.limit} per ${key.quota.period} exceeded`, key, {
        ...(q.retryAfterS !== null ? { "retry-after": String(q.retryAfterS) } : {}),
        ...(rate ? rateLimitHeaders(rate) : {}),
      });
    }
  }
  deps.usage.touch(key.id);
  return { ok: true, key, agent, ip, rate };
}
