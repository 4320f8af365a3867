import { KeywardError } from "../errors.js";

/**
 * A tool call refused before the tool ran: no user token in the call context (`missing_user_token`),
 * or Keyward's answer to `POST /v1/tools/credentials` (SPEC §6): `invalid_token` (401),
 * `credential_not_granted` (403), `credential_not_found` (404), or another server code. The message
 * names credentials at most, never a value or the user's token.
 *
 * @example
 * ```ts
 * try {
 *   await listFunctions({ region: "eu" }, { userToken });
 * } catch (err) {
 *   if (err instanceof UserCredentialError && err.code === "credential_not_found") askUserToConnectAccount();
 * }
 * ```
 */
export class UserCredentialError extends KeywardError {
  constructor(code: string, message: string, options: ConstructorParameters<typeof KeywardError>[2] = {}) {
    super(code, message, options);
    this.name = "UserCredentialError";
  }
}

/**
 * A wrapped tool (or the stream it returned) did not finish within `timeoutMs`. The tool's
 * `ctx.signal` is aborted with this error, which kills a child started with `ctx.run` or with
 * `spawn(…, { signal: ctx.signal })`.
 *
 * @example
 * ```ts
 * try {
 *   await tool(args, { userToken });
 * } catch (err) {
 *   if (err instanceof ToolTimeoutError) return "the tool took too long";
 * }
 * ```
 */
export class ToolTimeoutError extends KeywardError {
  /** The tool's name as audited. */
  readonly tool: string;
  readonly timeoutMs: number;

  constructor(tool: string, timeoutMs: number) {
    super("tool_timeout", `tool "${tool}" did not finish within ${timeoutMs} ms`);
    this.name = "ToolTimeoutError";
    this.tool = tool;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Recording a tool call at `POST /v1/audit/events` failed (after retries, for an outage). The call
 * itself has already returned; this reaches `onAuditError` or the client's `error` event.
 *
 * @example
 * ```ts
 * kw.on("error", (err) => {
 *   if (err instanceof AuditError) log.error({ tool: err.event.tool, code: err.code }, "tool call not audited");
 * });
 * ```
 */
export class AuditError extends KeywardError {
  /** The record that was not stored (it holds no secret: tool, user, outcome, count). */
  readonly event: AuditEvent;

  constructor(event: AuditEvent, cause: KeywardError) {
    super(cause.code, `tool call of "${event.tool}" not audited: ${cause.message}`, {
      status: cause.status,
      requestId: cause.requestId,
      cause,
    });
    this.name = "AuditError";
    this.event = event;
  }
}

/** The body of `POST /v1/audit/events` (SPEC §6). */
export interface AuditEvent {
  tool: string;
  user: string;
  outcome: "ok" | "error";
  redactions: number;
}
