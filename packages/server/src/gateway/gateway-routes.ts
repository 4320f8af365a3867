import { AGENT_NAME, type RoutableAgent } from "../agents/agents-service.js";
import type { OutcomeTap } from "../anomaly/outcomes.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { DenialSampler } from "../audit/denial-sampler.js";
import { codeToStatus, KeywardError } from "../errors.js";
import { checkForwardedPath, PATH_REFUSAL_MESSAGES } from "../http/path-safety.js";
import { sendError, sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { rateLimitHeaders } from "../limits/rate-limiter.js";
import type { Metrics } from "../ops/metrics.js";
import { type AuthorizeDeps, authorize, type Decision } from "./authorize.js";
import type { GatewayProxy } from "./proxy.js";
import type { UpstreamToken, UpstreamTokens } from "./upstream-token.js";

export interface GatewayDeps {
  authorize: AuthorizeDeps;
  tokens: UpstreamTokens;
  proxy: GatewayProxy;
  audit: AuditSink;
  metrics: Metrics;
  /** Samples the records of denials without a known key (audit/denial-sampler.ts); absent: all recorded. */
  denials?: DenialSampler;
  /** Every decision, allowed or denied, for usage counting and the anomaly detectors (memory only). */
  outcomes?: OutcomeTap;
}

/**
 * The decision as an outcome. The agent is named only when it is a slug: anything else came from
 * the URL as the caller wrote it, and would let one caller mint unbounded names in the counters.
 */
function recordOutcome(deps: GatewayDeps, agent: string, d: Decision): void {
  if (!deps.outcomes) return;
  if (d.ok) {
    // The hot path's shape: one literal, no spreads (an allowed request has a key and a stored
    // agent, whose name is a slug).
    deps.outcomes.record({
      at: deps.authorize.now(),
      surface: "gateway",
      code: "allowed",
      ip: d.ip,
      keyId: d.key.id,
      owner: d.key.owner,
      agent: d.agent.name,
    });
    return;
  }
  deps.outcomes.record({
    at: deps.authorize.now(),
    surface: "gateway",
    code: d.code,
    ip: d.ip,
    ...(d.key ? { keyId: d.key.id, owner: d.key.owner } : {}),
    ...(AGENT_NAME.test(agent) ? { agent } : {}),
  });
}

/** Splits `/agents/{name}/rest…` into the decoded name and the raw rest (with its leading slash). */
export function splitAgentPath(path: string): { name: string; rest: string } | undefined {
  if (!path.startsWith("/agents/")) return undefined;
  const after = path.slice("/agents/".length);
  const slash = after.indexOf("/");
  const rawName = slash === -1 ? after : after.slice(0, slash);
  if (rawName === "") return undefined;
  let name: string;
  try {
    name = decodeURIComponent(rawName);
  } catch {
    return undefined;
  }
  return { name, rest: slash === -1 ? "" : after.slice(slash) };
}

type ForwardedAgentPath = { ok: true; name: string; rest: string } | { ok: false; message: string };

/**
 * The agent named by forward-auth's original URI (`X-Forwarded-Uri` or `X-Original-URI`), or why
 * it is refused. The proxy that asks routes the request on its own reading of that URI (nginx
 * decodes it and resolves `..` first), so Keyward authorizes only a URI every reader maps to the
 * same agent: the whole path passes the forwarding rules (no `..`, encoded or not), and the name
 * is a slug as written, since an escaped name is one a proxy may read differently. Otherwise a
 * key for `alpha` would be judged on `/agents/alpha/../beta/…`, which nginx sends to beta.
 *
 * A proxy sets one of the two headers and passes the caller's own headers along (nginx's
 * auth_request does): when both are present they must agree, or the caller could pick the one
 * Keyward reads.
 */
export function forwardedAgentPath(forwardedUri: unknown, originalUri: unknown): ForwardedAgentPath {
  if (forwardedUri !== undefined && originalUri !== undefined && forwardedUri !== originalUri) {
    return { ok: false, message: "X-Forwarded-Uri and X-Original-URI name different URIs" };
  }
  const uri = forwardedUri ?? originalUri;
  const path = typeof uri === "string" ? (uri.split("?")[0] ?? "") : "";
  const parts = splitAgentPath(path);
  if (!parts) return { ok: false, message: "X-Forwarded-Uri or X-Original-URI must name /agents/{name}/…" };
  const safe = checkForwardedPath(path);
  if (!safe.ok) return { ok: false, message: PATH_REFUSAL_MESSAGES[safe.reason] };
  // The name as written: a slug has nothing to decode, so no reader can make it another name.
  if (!AGENT_NAME.test(path.slice("/agents/".length, path.length - parts.rest.length))) {
    return { ok: false, message: "the agent name must be a slug [a-z0-9][a-z0-9-]{0,62}, written without %-escapes" };
  }
  return { ok: true, name: parts.name, rest: parts.rest };
}

function denied(deps: GatewayDeps, ctx: RequestContext, agent: string, d: Extract<Decision, { ok: false }>): void {
  recordOutcome(deps, agent, d);
  deps.metrics.decisions.inc(d.code);
  if (d.code === "rate_limited") deps.metrics.rateLimitHits.inc();
  if (d.code === "quota_exceeded") deps.metrics.quotaHits.inc();
  const record = {
    actor: d.key?.owner ?? "anonymous",
    action: "gateway.deny",
    // The name comes from the URL: anything but a slug is no agent's, and is never stored raw.
    target: AGENT_NAME.test(agent) ? `agent:${agent}` : "agent:(invalid name)",
    outcome: "denied" as const,
    code: d.code,
    ip: d.ip,
    requestId: ctx.requestId,
    ...(d.key ? { details: { key_id: d.key.id, prefix: d.key.prefix } } : {}),
  };
  // Without a known key the request cost its sender nothing: sampled per address (issue 18).
  if (d.key === undefined && deps.denials) deps.denials.record(record);
  else deps.audit.recordLater(record);
}

type Allowed = Extract<Decision, { ok: true }>;

/**
 * The upstream JWT for an allowed request: memory only when a recent one is reused. A newly
 * signed token is recorded in the audit log first; while the log is failing (fail closed) that
 * throws, and the token is dropped unused.
 */
function upstreamToken(
  deps: GatewayDeps,
  ctx: RequestContext,
  decision: Allowed,
): UpstreamToken | Promise<UpstreamToken> {
  // The effective scopes: a token's are narrowed to what its key holds now.
  const caller = decision.token
    ? {
        keyId: decision.key.id,
        owner: decision.token.claims.sub,
        scopes: decision.scopes,
        act: decision.token.claims.act,
        expCap: decision.token.claims.exp,
        cacheKey: `jti:${decision.token.claims.jti}`,
      }
    : { keyId: decision.key.id, owner: decision.key.owner, scopes: decision.scopes };
  const upstream = deps.tokens.get(caller, decision.agent.name, deps.authorize.now());
  const { fresh } = upstream;
  if (!fresh) return upstream;
  return deps.audit
    .recordToken({
      actor: caller.owner,
      action: "token.mint",
      target: `agent:${decision.agent.name}`,
      outcome: "success",
      ip: decision.ip,
      requestId: ctx.requestId,
      details: { kind: "upstream", jti: fresh.jti, key_id: fresh.client_id, exp: fresh.exp },
    })
    .then(
      () => upstream,
      (err) => {
        deps.tokens.forgetKey(decision.key.id);
        throw err;
      },
    );
}

function allowedHeaders(decision: Allowed, requestId: string): Record<string, string> {
  return decision.rate
    ? { "x-request-id": requestId, ...rateLimitHeaders(decision.rate) }
    : { "x-request-id": requestId };
}

/**
 * `ANY /agents/{name}/…`: check, swap the credential for a Keyward JWT, stream to the upstream.
 * When everything it needs is in memory it runs to the proxy call without a single await.
 */
export function createGatewayHandler(deps: GatewayDeps) {
  const { metrics } = deps;

  function forward(
    ctx: RequestContext,
    decision: Allowed,
    rest: string,
    upstream: UpstreamToken,
    started: number,
  ): void {
    metrics.checkLatency.observe((performance.now() - started) / 1000);
    metrics.decisions.inc("allowed");
    const url = ctx.req.url as string;
    const q = url.indexOf("?");
    deps.proxy.forward(
      ctx.req,
      ctx.res,
      { upstream: decision.agent.upstream, rest, search: q === -1 ? "" : url.slice(q) },
      { authorization: upstream.authorization, requestId: ctx.requestId, rate: decision.rate, peerIp: ctx.peerIp },
    );
  }

  function decided(
    ctx: RequestContext,
    name: string,
    rest: string,
    decision: Decision,
    started: number,
  ): void | Promise<void> {
    ctx.keyId = decision.key?.id;
    if (!decision.ok) {
      denied(deps, ctx, name, decision);
      ctx.req.resume();
      sendError(ctx.res, decision.code, decision.message, ctx.requestId, decision.headers);
      metrics.requests.inc("gateway", String(codeToStatus(decision.code)));
      return;
    }
    recordOutcome(deps, name, decision);
    const upstream = upstreamToken(deps, ctx, decision);
    if (!(upstream instanceof Promise)) return forward(ctx, decision, rest, upstream, started);
    return upstream.then((t) => forward(ctx, decision, rest, t, started));
  }

  return (ctx: RequestContext): void | Promise<void> => {
    const parts = splitAgentPath(ctx.path);
    if (!parts) throw new KeywardError("not_found", "no such endpoint");
    // Before the checks: a request that can never be forwarded is neither allowed nor given a token.
    const safe = checkForwardedPath(parts.rest);
    if (!safe.ok) throw new KeywardError("invalid_request", PATH_REFUSAL_MESSAGES[safe.reason]);
    const started = performance.now();
    const decision = authorize(deps.authorize, { headers: ctx.req.headers, peerIp: ctx.peerIp }, parts.name);
    if (decision instanceof Promise) return decision.then((d) => decided(ctx, parts.name, parts.rest, d, started));
    return decided(ctx, parts.name, parts.rest, decision, started);
  };
}

/**
 * Forward-auth (`GET /v1/verify`) for nginx auth_request, Traefik ForwardAuth and Envoy: the same
 * checks, answered with 200 and the downstream JWT in `Authorization`, or the same denial.
 * `X-Keyward-Code` names the denial so proxies that map statuses (nginx turns a 429 from
 * auth_request into a 500) can still tell the caller what happened.
 */
export function registerForwardAuthRoute(router: Router, deps: GatewayDeps): void {
  // Envoy's ext_authz (and Traefik, depending on version) ask with the original request's method.
  router.on(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], "/v1/verify", async (ctx) => {
    ctx.req.resume(); // the body, if any, is the upstream's business
    const parts = forwardedAgentPath(ctx.req.headers["x-forwarded-uri"], ctx.req.headers["x-original-uri"]);
    if (!parts.ok) {
      // With X-Keyward-Code like every denial: nginx's auth_request turns a 400 into a 500.
      sendError(ctx.res, "invalid_request", parts.message, ctx.requestId, { "x-keyward-code": "invalid_request" });
      return;
    }
    const decision = await authorize(deps.authorize, { headers: ctx.req.headers, peerIp: ctx.peerIp }, parts.name);
    ctx.keyId = decision.key?.id;
    if (!decision.ok) {
      denied(deps, ctx, parts.name, decision);
      sendError(ctx.res, decision.code, decision.message, ctx.requestId, {
        ...decision.headers,
        "x-keyward-code": decision.code,
      });
      return;
    }
    recordOutcome(deps, parts.name, decision);
    const { authorization } = await upstreamToken(deps, ctx, decision);
    deps.metrics.decisions.inc("allowed");
    sendJson(
      ctx.res,
      200,
      { ok: true, agent: decision.agent.name, subject: decision.token?.claims.sub ?? decision.key.owner },
      {
        authorization,
        ...allowedHeaders(decision, ctx.requestId),
        "x-keyward-subject": decision.token?.claims.sub ?? decision.key.owner,
      },
    );
  });
}

export type { RoutableAgent };
