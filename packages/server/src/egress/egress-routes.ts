import type { AuditEventInput, AuditSink } from "../audit/audit-sink.js";
import { KEYWARD } from "../auth/audience.js";
import type { Caller, CallerAuth } from "../auth/caller-auth.js";
import { agentOf } from "../auth/caller-kind.js";
import { isCredentialName } from "../credentials/credential-rules.js";
import { KeywardError } from "../errors.js";
import type { UpstreamError } from "../gateway/proxy.js";
import { sendError } from "../http/respond.js";
import type { Handler, RequestContext } from "../http/router.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import type { EgressCredential, EgressCredentials } from "./egress-credentials.js";
import type { EgressProxy, EgressRequest } from "./egress-proxy.js";
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

/**
 * One use of a credential through egress: what the proxy reports back, as methods of one object
 * (a request allocates it, not a closure per callback). The URL the agent asked for is parsed only
 * when an upstream's Location needs placing.
 */
class EgressUse implements EgressRequest {
  readonly origin: string;
  readonly inject: { name: string; value: string };
  readonly redactor: EgressCredential["redactor"];
  readonly requestId: string;

  constructor(
    private readonly deps: EgressDeps,
    private readonly ctx: RequestContext,
    private readonly caller: Caller,
    private readonly cred: EgressCredential,
    readonly path: string,
  ) {
    this.origin = cred.base.origin;
    this.inject = cred.inject;
    this.redactor = cred.redactor;
    this.requestId = ctx.requestId;
  }

  private use(): Record<string, unknown> {
    return { version: this.cred.version, upstream_host: this.cred.host, method: this.ctx.method };
  }

  private target(): string {
    return `credential:${this.cred.name}`;
  }

  location(value: string): string | null {
    const requested = new URL(this.path, this.cred.base.origin);
    return agentLocation(value, requested, this.cred.base, `/egress/${encodeURIComponent(this.cred.name)}`);
  }

  async admit(status: number): Promise<void> {
    await this.deps.audit.recordToken(
      record(this.ctx, this.caller, {
        target: this.target(),
        outcome: "success",
        details: { ...this.use(), upstream_status: status },
      }),
    );
    this.deps.metrics.credentialReads.inc({ mode: "inject" });
  }

  refused(err: unknown): void {
    const code = err instanceof KeywardError ? err.code : "audit_unavailable";
    this.deps.logger.error(
      { request_id: this.ctx.requestId, credential: this.cred.name },
      "egress: audit write failed; answer withheld",
    );
    sendError(this.ctx.res, code, "the audit log is unavailable; the upstream's answer was withheld", this.requestId);
  }

  abandoned(): void {
    this.deps.audit.recordLater(
      record(this.ctx, this.caller, {
        target: this.target(),
        outcome: "failure",
        code: "client_closed",
        details: this.use(),
      }),
    );
  }

  failed(error: UpstreamError, message: string): void {
    this.deps.audit.recordLater(
      record(this.ctx, this.caller, { target: this.target(), outcome: "failure", code: error, details: this.use() }),
    );
    const fallback =
      error === "upstream_timeout" ? "the upstream did not answer in time" : "the upstream is unreachable";
    sendError(this.ctx.res, error, message || fallback, this.requestId);
  }
}

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
  const { audit } = deps;

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
      deps.proxy.forward(ctx.req, ctx.res, new EgressUse(deps, ctx, caller, cred, path));
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
