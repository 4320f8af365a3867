import { createRedactor } from "../redaction/index.js";
import type { AuditQueue } from "./audit-queue.js";
import { type AuditError, ToolTimeoutError, UserCredentialError } from "./errors.js";
import { injectEnv, injectHeaders, injectParams, planInjection } from "./injection.js";
import { redactStream, streamKind, untilAborted } from "./redact-stream.js";
import { redactError, redactValue, type Tally } from "./redact-value.js";
import { createRun } from "./run.js";
import type { ToolsApi } from "./tools-api.js";
import type { ToolCallContext, WithUserCredentialsOptions, WrappedTool } from "./types.js";

const DEFAULT_TIMEOUT_MS = 60_000;

export interface WrapDeps {
  api: ToolsApi;
  audit: AuditQueue;
  /** Where audit failures go when the tool has no `onAuditError`. */
  onAuditError: (err: AuditError) => void;
  /** The agent's own token: redacted from results too (an env tool's child inherits process.env). */
  ownToken: () => string | Promise<string>;
}

/**
 * `sub` of the user token, read without verifying it: Keyward verified the token a moment ago
 * when it answered `/v1/tools/credentials` (401 otherwise), so the label is the verified user.
 */
export function userOf(token: string): string {
  try {
    const payload: unknown = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
    const sub = (payload as { sub?: unknown }).sub;
    if (typeof sub === "string" && sub.startsWith("user:")) return sub;
  } catch {
    // Not a JWT: fall through.
  }
  return "user:unknown";
}

// biome-ignore lint/suspicious/noExplicitAny: the public overloads (KeywardTools) carry the types
type AnyTool = (args: any, ctx: any) => unknown;

export function wrapTool(
  tool: AnyTool,
  opts: WithUserCredentialsOptions,
  deps: WrapDeps,
): WrappedTool<unknown, unknown> {
  if (typeof tool !== "function") throw new TypeError("withUserCredentials: tool must be a function");
  if (opts === null || typeof opts !== "object") throw new TypeError("withUserCredentials: options are required");
  const plan = planInjection(opts as Parameters<typeof planInjection>[0]);
  const name = opts.name ?? tool.name;
  if (typeof name !== "string" || name === "") {
    throw new TypeError("withUserCredentials: the tool has no name: pass the name option (audit records use it)");
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError("withUserCredentials: timeoutMs must be > 0");
  const onAuditError = opts.onAuditError ?? deps.onAuditError;

  const call = async (args: unknown, ctx: ToolCallContext): Promise<unknown> => {
    const userToken = (ctx as ToolCallContext | undefined)?.userToken;
    if (typeof userToken !== "string" || userToken === "") {
      throw new UserCredentialError("missing_user_token", `tool "${name}" was called without ctx.userToken`);
    }
    // One signal for the whole call: the caller's cancellation or the deadline.
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(new ToolTimeoutError(name, timeoutMs)), timeoutMs);
    timer.unref();
    const caller = ctx.signal;
    const onCancel = () => ctrl.abort(caller?.reason);
    if (caller?.aborted) onCancel();
    caller?.addEventListener("abort", onCancel, { once: true });
    const done = () => {
      clearTimeout(timer);
      caller?.removeEventListener("abort", onCancel);
    };

    let values: Map<string, string>;
    try {
      values = await deps.api.userCredentials(userToken, plan.names, ctrl.signal);
    } catch (err) {
      done();
      throw err;
    }
    const user = userOf(userToken);
    const r = createRedactor([...values.values(), await deps.ownToken()]);
    const tally: Tally = { count: 0 };
    const report = (outcome: "ok" | "error") =>
      deps.audit.send({ tool: name, user, outcome, redactions: tally.count }, onAuditError);
    // Our own abort reasons hold no secret and keep their class; anything else is redacted.
    const safe = (err: unknown) =>
      ctrl.signal.aborted && err === ctrl.signal.reason
        ? err
        : err instanceof Error
          ? redactError(err, r, tally)
          : redactValue(err, r, tally);

    let result: unknown;
    try {
      const base = { user, signal: ctrl.signal };
      let invoke: () => unknown;
      if (plan.mode === "params") {
        const a = injectParams(args, values);
        invoke = () => tool(a, base);
      } else if (plan.mode === "env") {
        const env = injectEnv(plan, values);
        invoke = () => tool(args, { ...base, env, run: createRun(env, ctrl.signal) });
      } else {
        const headers = injectHeaders(plan, values);
        invoke = () => tool(args, { ...base, headers });
      }
      result = await untilAborted(Promise.resolve().then(invoke), ctrl.signal);
    } catch (err) {
      done();
      const out = safe(err);
      report("error");
      throw out;
    }

    const kind = streamKind(result);
    if (kind !== undefined) {
      return redactStream(kind, result as AsyncIterable<unknown>, r, ctrl.signal, (t, error) => {
        done();
        tally.count += t.count;
        report(error === undefined ? "ok" : "error");
      });
    }
    done();
    const out = redactValue(result, r, tally);
    report("ok");
    return out;
  };
  return Object.defineProperty(call, "toolName", { value: name, enumerable: true }) as WrappedTool<unknown, unknown>;
}
