import { z } from "zod";
import type { AuditSink } from "../audit/audit-sink.js";
import { KEYWARD } from "../auth/audience.js";
import type { CallerAuth } from "../auth/caller-auth.js";
import { agentOf } from "../auth/caller-kind.js";
import { KeywardError } from "../errors.js";
import type { RequestContext, Router } from "../http/router.js";
import { CALLER, errors, json } from "../openapi/operation.js";
import type { Metrics } from "../ops/metrics.js";
import { type AgentViews, parseCursor } from "./agent-view.js";
import type { CredentialEvents, StreamRefusal } from "./credential-events.js";
import { AgentCredentialsSchema } from "./credentials-schemas.js";

const STREAM_RETRY_AFTER_S = 30;
/** `?since=`: a cursor from an earlier answer (parsed by agent-view.ts `parseCursor`). */
const sinceQuery = z.object({
  since: z
    .string()
    .regex(/^(0|[1-9][0-9]{0,15})$/)
    .optional(),
});
const STREAM_REFUSALS: Record<StreamRefusal, string> = {
  per_key: "too many event streams are open with this key; close one first",
  per_address: "too many event streams are open from this address; close one first",
  total: "the server has as many event streams open as it allows; try again later",
};

/** RFC 9110 §13.1.2: If-None-Match compares weakly; `*` matches any current representation. */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === "*") return true;
  return header.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}

/**
 * SPEC §6: GET /v1/credentials and GET /v1/credentials/events, authenticated with the agent's own
 * key or an access token whose `sub` is the agent; its grants decide what it gets.
 */
export function registerAgentCredentialRoutes(
  router: Router,
  deps: {
    auth: CallerAuth;
    views: AgentViews;
    events: CredentialEvents;
    audit: AuditSink;
    metrics: Metrics;
  },
): void {
  const { views, events, audit, metrics } = deps;

  router.get(
    "/v1/credentials",
    {
      operationId: "getAgentCredentials",
      summary:
        "The values of the credentials granted to the calling agent in read mode (strong ETag; If-None-Match → 304)",
      tag: "agent",
      auth: CALLER,
      query: sinceQuery,
      responses: {
        200: json(AgentCredentialsSchema, "Everything, or what changed since the cursor"),
        304: { description: "Not modified since the ETag given" },
        ...errors(400, 401, 403),
      },
    },
    async (ctx) => {
      const caller = await deps.auth.require(ctx, KEYWARD);
      const agent = agentOf(caller);
      const since = parseCursor(ctx.query.get("since"), "query.since");
      const view = await views.get(agent);
      const rep = since === undefined ? view.full() : view.since(since);
      if (etagMatches(ctx.req.headers["if-none-match"], rep.etag)) {
        ctx.res.writeHead(304, { etag: rep.etag, "cache-control": "no-store" }).end();
        return;
      }
      if (rep.count > 0) {
        // Fails closed like an issued token: while the audit log is failing, no value goes out.
        await audit.recordToken({
          actor: caller.principal,
          action: "credential.read",
          outcome: "success",
          ip: ctx.peerIp,
          requestId: ctx.requestId,
          details: { read: rep.served, via: caller.via, key_id: caller.keyId },
        });
        metrics.credentialReads.inc({ mode: "read" }, rep.count);
      }
      ctx.res.writeHead(200, {
        "content-type": "application/json; charset=utf-8",
        "content-length": rep.body.length,
        "cache-control": "no-store",
        etag: rep.etag,
      });
      ctx.res.end(ctx.method === "HEAD" ? undefined : rep.body);
    },
  );

  router.get(
    "/v1/credentials/events",
    {
      operationId: "streamAgentCredentialEvents",
      summary: "Server-Sent Events: `changed` {name, version} and `removed` {name}",
      tag: "agent",
      auth: CALLER,
      query: sinceQuery,
      responses: {
        200: { description: "The event stream (heartbeats are comments)", contentType: "text/event-stream" },
        ...errors(401, 403),
      },
    },
    async (ctx: RequestContext) => {
      const caller = await deps.auth.require(ctx, KEYWARD);
      const agent = agentOf(caller);
      const lastEventId = ctx.req.headers["last-event-id"];
      const since =
        typeof lastEventId === "string" && lastEventId !== ""
          ? parseCursor(lastEventId.trim(), "Last-Event-ID")
          : parseCursor(ctx.query.get("since"), "query.since");
      if (ctx.method === "HEAD") {
        ctx.res
          .writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store" })
          .end();
        return;
      }
      const address = deps.auth.requestIp({ headers: ctx.req.headers, peerIp: ctx.peerIp });
      const full = events.reserve(caller.keyId, address, ctx.res);
      if (full !== undefined) {
        // A stream ends only when its client goes: the caller should close one, not retry at once.
        throw new KeywardError("rate_limited", STREAM_REFUSALS[full], { "retry-after": String(STREAM_RETRY_AFTER_S) });
      }
      events.attach({
        agent,
        keyIds: caller.keyIds,
        jti: caller.token?.claims.jti,
        res: ctx.res,
        // Without a cursor the stream starts at the current one, taken before `: connected` is
        // written: every change after that comment is sent.
        since: since ?? (await views.get(agent)).cursor,
        expiresAt: caller.validUntil,
      });
    },
  );
}
