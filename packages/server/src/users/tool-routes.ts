import { z } from "zod";
import type { AuditEventInput, AuditSink } from "../audit/audit-sink.js";
import { KEYWARD } from "../auth/audience.js";
import type { Caller, CallerAuth } from "../auth/caller-auth.js";
import { agentOf } from "../auth/caller-kind.js";
import { CREDENTIAL_NAME_HINT, isCredentialName } from "../credentials/credential-rules.js";
import { invalidRequest, KeywardError } from "../errors.js";
import { readJson } from "../http/body.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { CALLER, errors, json } from "../openapi/operation.js";
import type { Metrics } from "../ops/metrics.js";
import type { UserCredentialSource } from "./user-credential-source.js";
import { USER_ID, USER_PREFIX } from "./user-rules.js";
import type { CheckUserToken } from "./user-token.js";
import { AuditEventRecordedSchema, ToolCredentialsSchema } from "./users-schemas.js";

const MAX_NAMES = 100;
/** A tool-call record is a few facts, not a payload: its details stay small and flat. */
const MAX_DETAILS_BYTES = 4096;
const MAX_DETAILS_KEYS = 32;

const fetchSchema = z.strictObject({
  user_token: z
    .string()
    .min(1)
    .max(16 * 1024),
  names: z.array(z.string().max(256)).min(1).max(MAX_NAMES),
});

// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const NO_CONTROL = /^[^\x00-\x1f\x7f]+$/;
const eventSchema = z.strictObject({
  tool: z.string().min(1).max(200).regex(NO_CONTROL, "must not contain control characters"),
  user: z
    .string()
    .max(USER_PREFIX.length + 128)
    .regex(new RegExp(`^${USER_PREFIX}${USER_ID.source.slice(1)}`), "must be user:<id>"),
  outcome: z.enum(["ok", "error"]),
  redactions: z.number().int().min(0).max(1_000_000_000),
  details: z
    .record(
      z.string().min(1).max(64).regex(NO_CONTROL, "must not contain control characters"),
      z.union([z.string().max(1024), z.number(), z.boolean(), z.null()]),
    )
    .optional(),
});

/**
 * The tool paths of SPEC §6, for agents (their own key, or an access token whose `sub` is the
 * agent): `POST /v1/tools/credentials` hands a tool its user's credentials, and
 * `POST /v1/audit/events` records what the tool did with them.
 */
export function registerToolRoutes(
  router: Router,
  deps: {
    auth: CallerAuth;
    checkUserToken: CheckUserToken;
    /** The per-user credential names an agent may fetch (its `user_credentials` grant). */
    grantedUserCredentials: (agent: string) => Promise<readonly string[]>;
    source: UserCredentialSource;
    audit: AuditSink;
    metrics: Metrics;
  },
): void {
  const { audit } = deps;
  /** Only an agent has grants and tools; anyone else is refused before the body is read. */
  const agentCaller = async (ctx: RequestContext): Promise<{ caller: Caller; agent: string }> => {
    const caller = await deps.auth.require(ctx, KEYWARD);
    return { caller, agent: agentOf(caller, "use tools") };
  };

  router.post(
    "/v1/tools/credentials",
    {
      operationId: "fetchToolCredentials",
      summary: "A tool's user credentials, all or nothing (the agent's key or token; user_token names the user)",
      auth: CALLER,
      tag: "agent",
      body: fetchSchema,
      responses: { 200: json(ToolCredentialsSchema, "The values, by name"), ...errors(400, 401, 403, 404) },
    },
    async (ctx) => {
      const { caller, agent } = await agentCaller(ctx);
      const body = await readJson(ctx.req, fetchSchema);
      const seen = new Set<string>();
      body.names.forEach((name, i) => {
        if (!isCredentialName(name)) throw invalidRequest(`body.names.${i}: ${CREDENTIAL_NAME_HINT}`);
        if (seen.has(name)) throw invalidRequest(`body.names.${i}: ${name} is listed twice`);
        seen.add(name);
      });
      const base = {
        actor: caller.principal,
        action: "user_credential.read",
        ip: ctx.peerIp,
        requestId: ctx.requestId,
      } satisfies Partial<AuditEventInput>;
      const deny = (
        code: "invalid_token" | "credential_not_granted" | "credential_not_found",
        message: string,
        target?: string,
      ) => {
        audit.recordLater({
          ...base,
          outcome: "denied",
          code,
          ...(target ? { target } : {}),
          details: { names: body.names, via: caller.via, key_id: caller.keyId },
        });
        return new KeywardError(code, message);
      };

      const user = await deps.checkUserToken(body.user_token, agent, ctx.peerIp);
      if (!user.ok) throw deny("invalid_token", user.message);
      const target = `${USER_PREFIX}${user.user}`;
      const granted = new Set(await deps.grantedUserCredentials(agent));
      const notGranted = body.names.find((n) => !granted.has(n));
      if (notGranted !== undefined) {
        throw deny("credential_not_granted", `user credential ${notGranted} is not granted to agent ${agent}`, target);
      }
      const found = await deps.source.resolve(user.user, body.names);
      if (!found.ok) {
        throw deny("credential_not_found", `${target} has no credential named ${found.missing}`, target);
      }
      // Fails closed like an issued token: while the audit log is failing, no value goes out.
      await audit.recordToken({
        ...base,
        target,
        outcome: "success",
        details: { names: body.names, via: caller.via, key_id: caller.keyId, user_key_id: user.keyId, jti: user.jti },
      });
      deps.metrics.credentialReads.inc({ mode: "user" }, body.names.length);
      sendJson(ctx.res, 200, { credentials: found.values });
    },
  );

  router.post(
    "/v1/audit/events",
    {
      operationId: "recordToolEvent",
      summary: "Record a tool call in the audit log, with the agent as actor",
      auth: CALLER,
      tag: "agent",
      body: eventSchema,
      responses: { 201: json(AuditEventRecordedSchema, "Recorded"), ...errors(400, 401, 403) },
    },
    async (ctx) => {
      const { caller } = await agentCaller(ctx);
      const body = await readJson(ctx.req, eventSchema);
      if (body.details !== undefined) {
        const keys = Object.keys(body.details).length;
        if (keys > MAX_DETAILS_KEYS)
          throw invalidRequest(`body.details: has ${keys} keys; the limit is ${MAX_DETAILS_KEYS}`);
        const bytes = Buffer.byteLength(JSON.stringify(body.details), "utf8");
        if (bytes > MAX_DETAILS_BYTES) {
          throw invalidRequest(`body.details: is ${bytes} bytes; the limit is ${MAX_DETAILS_BYTES}`);
        }
      }
      // Durable before the answer: an agent that got 201 knows its record is in the chain. The
      // audit log masks anything secret-shaped in it (audit-scrub.ts) on the way in.
      await audit.record({
        actor: caller.principal,
        action: "tool.call",
        target: body.user,
        outcome: body.outcome === "ok" ? "success" : "failure",
        ip: ctx.peerIp,
        requestId: ctx.requestId,
        details: {
          tool: body.tool,
          redactions: body.redactions,
          via: caller.via,
          key_id: caller.keyId,
          ...(body.details !== undefined ? { reported: body.details } : {}),
        },
      });
      sendJson(ctx.res, 201, { recorded: true });
    },
  );
}
