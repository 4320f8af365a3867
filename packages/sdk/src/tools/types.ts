import type { AuditError } from "./errors.js";
import type { RunFunction } from "./run.js";

/** What the caller of a wrapped tool passes: whose call this is. */
export interface ToolCallContext {
  /**
   * The user's Keyward access token (`sub` = `user:<id>`, `aud` = this agent), e.g. the JWT the
   * gateway forwarded with the request. The user is read from this token, never from arguments.
   */
  userToken: string;
  /** Cancels the call (and kills a child started with `ctx.run`). */
  signal?: AbortSignal | undefined;
}

/** What every wrapped tool receives as its second argument. */
export interface ToolContext {
  /** `user:<id>`: the `sub` of the user token Keyward accepted for this call. */
  user: string;
  /** Aborted at `timeoutMs` (reason: a `ToolTimeoutError`) or when the caller cancels. */
  signal: AbortSignal;
}

/** `inject: "env"`: an environment for child processes, and a helper that uses it. */
export interface EnvToolContext extends ToolContext {
  /** A minimal environment (or `baseEnv`) plus the user's credentials; pass it to `spawn(…, { env: ctx.env })`. */
  env: Record<string, string>;
  /** Runs a command with `ctx.env` and `ctx.signal` (killed at the deadline); see {@link RunFunction}. */
  run: RunFunction;
}

/** `inject: "headers"`: HTTP headers carrying the user's credentials. */
export interface HeadersToolContext extends ToolContext {
  headers: Record<string, string>;
}

interface BaseOptions {
  /** The credentials the tool needs (granted to the agent in `user_credentials`, set by the user). */
  names: readonly string[];
  /** The tool's name in audit records. Default: the function's name. */
  name?: string;
  /** A call (including reading a streamed result to its end) fails after this long. Default 60 s. */
  timeoutMs?: number;
  /**
   * Where a failed audit record is reported (the call itself has returned by then). Default: the
   * Keyward client's `error` event.
   */
  onAuditError?: (err: AuditError) => void;
}

export interface ParamsOptions extends BaseOptions {
  inject: "params";
}

export interface EnvOptions extends BaseOptions {
  inject: "env";
  /**
   * Variable → credential name, e.g. `{ ALIYUN_AK: "aliyun_ak" }`. A name not mapped here gets its
   * default variable: the name upper-cased, other characters than letters and digits as `_`.
   */
  env?: Record<string, string>;
  /**
   * What `ctx.env` starts from. Default: only PATH, HOME, LANG, LC_ALL, TZ and TMPDIR (and
   * Windows' SYSTEMROOT, TEMP, TMP) from `process.env`, which may hold the agent's own secrets
   * (its Keyward key, its model API key). Pass `process.env` to inherit everything, or any object
   * the child needs. (The agent's Keyward token is redacted from results either way.)
   */
  baseEnv?: Readonly<Record<string, string | undefined>>;
}

export interface HeadersOptions extends BaseOptions {
  inject: "headers";
  /**
   * Header → template, `{name}` standing for a credential's value, e.g.
   * `{ Authorization: "Bearer {ticket_token}", "X-Org": "{org_id}" }`. Default with a single name:
   * `{ Authorization: "Bearer {<name>}" }`; required with several.
   */
  headers?: Record<string, string>;
}

export type WithUserCredentialsOptions = ParamsOptions | EnvOptions | HeadersOptions;

/**
 * A tool with the user's credentials injected and redacted: call it with the model's arguments
 * and the user's token. A streamed result comes back as the same kind of stream, redacted.
 */
export interface WrappedTool<A, R> {
  (args: A, ctx: ToolCallContext): Promise<R>;
  /** The name audit records use. */
  readonly toolName: string;
}

/** The arguments of a `params` tool as the model supplies them: without `credentials`. */
export type ModelArgs<P> = Omit<P, "credentials" | "user" | "user_id">;
