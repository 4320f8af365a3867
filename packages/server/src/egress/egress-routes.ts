import type { AuditEventInput, AuditSink } from "../audit/audit-sink.js";
import { KEYWARD } from "../auth/audience.js";
import type { Caller, CallerAuth } from "../auth/caller-auth.js";
import { agentOf } from "../auth/caller-kind.js";
import { isCredentialName } from "../credentials/credential-rules.js";
import { KeywardError } from "../errors.js";
import { sendError } from "../http/respond.js";
import type { Handler, RequestContext } from "../http/router.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import type { EgressCredential, EgressCredentials } from "./egress-credentials.js";
import type { EgressProxy } from "./egress-proxy.js";
import { agentLocation, egressTargetPath, splitEgressPath } from "./egress-target.js";

export interface EgressDeps {
  auth: CallerAuth;
  credentials: EgressCredentials;
  proxy: EgressProxy;
  audit: AuditSink;
  metrics: Metrics;
  logger: Logger;
}

const ACTION = "credential.inject";

/**
 * `ANY /egress/{credential}/{path…}` (SPEC §6): an agent uses a secret it never sees.
 *
 * Checks, in order: the caller is an agent (its key, or an access token whose `sub` is the agent)
 * → the credential is granted to it (`read` or `inject`) → it has an egress template → the path
 * stays under the template's base_url. Then the request is forwarded with the secret in the
 * template's header, and the answer comes back with the secret redacted.
 *
 * Every use is audited (`credential.inject`: the agent, the credential and version, the upstream
 * host and status; never the value), and so is every refusal after authentication. The record of
 * a use is written when the upstream's status is known, and fails closed like an issued token:
 * while the audit log is failing, the upstream's answer is withheld and the agent gets 503
 * `audit_unavailable` (the upstream did receive that request; see docs/architecture.md).
 */
export function createEgressHandler(deps: EgressDeps): Handler {
  const { audit, metrics } = deps;

  function record(ctx: RequestContext, caller: Caller, e: Omit<AuditEventInput, "actor" | "action">): AuditEventInput {
    return {
      actor: caller.principal,
      action: ACTION,
      ip: ctx.peerIp,
      requestId: ctx.requestId,
      ...e,
      details: { ...e.details, via: caller.via, key_id: caller.keyId },
    };
  }

  function forward(ctx: RequestContext, caller: Caller, cred: EgressCredential, path: string): void {
    const use = { version: cred.version, upstream_host: cred.host, method: ctx.method };
    const target = `credential:${cred.name}`;
    const egressPath = `/egress/${encodeURIComponent(cred.name)}`;
    const requested = new URL(path, cred.base.origin);
    deps.proxy.forward(ctx.req, ctx.res, {
      origin: cred.base.origin,
      path,
      inject: cred.inject,
      redactor: cred.redactor,
      requestId: ctx.requestId,
      location: (value) => agentLocation(value, requested, cred.base, egressPath),
      admit: async (status) => {
        await audit.recordToken(
          record(ctx, caller, { target, outcome: "success", details: { ...use, upstream_status: status } }),
        );
        metrics.credentialReads.inc({ mode: "inject" });
      },
      refused: (err) => {
        const code = err instanceof KeywardError ? err.code : "audit_unavailable";
        deps.logger.error(
          { request_id: ctx.requestId, credential: cred.name },
          "egress: audit write failed; answer withheld",
        );
        sendError(ctx.res, code, "the audit log is unavailable; the upstream's answer was withheld", ctx.requestId);
      },
      abandoned: () => {
        audit.recordLater(record(ctx, caller, { target, outcome: "failure", code: "client_closed", details: use }));
      },
      failed: (error, message) => {
        audit.recordLater(record(ctx, caller, { target, outcome: "failure", code: error, details: use }));
        const fallback =
          error === "upstream_timeout" ? "the upstream did not answer in time" : "the upstream is unreachable";
        sendError(ctx.res, error, message || fallback, ctx.requestId);
      },
    });
  }

  return async (ctx) => {
    const parts = splitEgressPath(ctx.path);
    if (!parts) throw new KeywardError("not_found", "no such endpoint");
    let caller: Caller | undefined;
    try {
      caller = await deps.auth.require(ctx, KEYWARD);
      const cred = await deps.credentials.resolve(agentOf(caller, "use egress"), parts.name);
      const url = ctx.req.url ?? "";
      const q = url.indexOf("?");
      const path = egressTargetPath(cred.base, parts.rest, q === -1 ? "" : url.slice(q));
      forward(ctx, caller, cred, path);
    } catch (err) {
      // Nothing was forwarded: the body is not wanted.
      ctx.req.resume();
      if (caller && err instanceof KeywardError && err.code !== "audit_unavailable") {
        audit.recordLater(
          record(ctx, caller, {
            target: `credential:${isCredentialName(parts.name) ? parts.name : "(invalid name)"}`,
            outcome: err.code === "credential_unavailable" ? "failure" : "denied",
            code: err.code,
          }),
        );
      }
      throw err;
    }
  };
}
