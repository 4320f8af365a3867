import { AuditQueue } from "./audit-queue.js";
import type { AuditError } from "./errors.js";
import type { ToolsApi } from "./tools-api.js";
import type {
  EnvOptions,
  EnvToolContext,
  HeadersOptions,
  HeadersToolContext,
  ModelArgs,
  ParamsOptions,
  ToolContext,
  WrappedTool,
} from "./types.js";
import { wrapTool } from "./with-user-credentials.js";

/** `kw.tools`: tools that act for a user with that user's own credentials (SPEC §7). */
export interface KeywardTools {
  /**
   * Wraps a tool so each call runs with the calling user's credentials, fetched from Keyward
   * (`POST /v1/tools/credentials` with the user's token and this agent's own token) and injected
   * as `inject` says. The values are then redacted from the result (also from a streamed result,
   * across chunk boundaries) and from errors, in every encoding the redactor knows (raw, base64,
   * base64url, URL/form, hex, JSON escapes), and a record `{tool, user, outcome, redactions}` goes
   * to Keyward's audit log. The model never sees a value; the user comes from the token only.
   *
   * Short values: redaction matches bytes, so a value of a few characters is also removed wherever
   * those characters occur by chance (a value `abc` turns `abcdef` into `[redacted]def`), and a
   * value under 7 bytes may be missed inside longer base64 text (there its encoded forms are
   * under 8 characters, too short to match safely; its own whole base64, hex and URL forms are
   * still found). Give tools credentials of 8 characters or more; real keys and tokens are far longer.
   *
   * `"params"`: the tool receives `{...args, credentials: {<name>: value}}`; any `credentials`,
   * `user` or `user_id` in the model's arguments is removed first.
   *
   * @example
   * ```ts
   * const listFunctions = kw.tools.withUserCredentials(
   *   async ({ region, credentials }: { region: string; credentials: Record<string, string> }) =>
   *     cloud.listFunctions({ region, accessKey: credentials.aliyun_ak }),
   *   { names: ["aliyun_ak"], inject: "params" },
   * );
   * const result = await listFunctions({ region: "eu-central-1" }, { userToken: req.headers.authorization!.slice(7) });
   * ```
   */
  withUserCredentials<P extends { credentials: Record<string, string> }, R>(
    tool: (args: P, ctx: ToolContext) => R | Promise<R>,
    opts: ParamsOptions,
  ): WrappedTool<ModelArgs<P>, Awaited<R>>;
  /**
   * `"env"`: the tool receives `ctx.env` (PATH, HOME, LANG, LC_ALL, TZ and TMPDIR, and Windows'
   * SYSTEMROOT, TEMP and TMP, from `process.env`, or `baseEnv`, plus the credentials; the agent's own `process.env` is never
   * read beyond those nor written) and `ctx.run(command, args)`, which runs a child
   * with that environment and kills it at the deadline. A tool that spawns its own child passes
   * `{ env: ctx.env, signal: ctx.signal }` to `spawn`, and may return `child.stdout` as a stream.
   *
   * @example
   * ```ts
   * const fc = kw.tools.withUserCredentials(
   *   async ({ region }: { region: string }, ctx) => (await ctx.run("aliyun", ["fc", "list", "--region", region])).stdout,
   *   { names: ["aliyun_ak", "aliyun_sk"], inject: "env", env: { ALIBABA_CLOUD_ACCESS_KEY_ID: "aliyun_ak" } },
   * );
   * ```
   */
  withUserCredentials<A, R>(
    tool: (args: A, ctx: EnvToolContext) => R | Promise<R>,
    opts: EnvOptions,
  ): WrappedTool<A, Awaited<R>>;
  /**
   * `"headers"`: the tool receives `ctx.headers`, built from the `headers` templates (default with
   * one name: `Authorization: Bearer {<name>}`).
   *
   * @example
   * ```ts
   * const tickets = kw.tools.withUserCredentials(
   *   async ({ q }: { q: string }, ctx) => (await fetch(`https://tickets.example/search?q=${q}`, { headers: ctx.headers })).json(),
   *   { names: ["ticket_token"], inject: "headers" },
   * );
   * ```
   */
  withUserCredentials<A, R>(
    tool: (args: A, ctx: HeadersToolContext) => R | Promise<R>,
    opts: HeadersOptions,
  ): WrappedTool<A, Awaited<R>>;
  /**
   * Waits until every audit record of the calls made so far was stored or reported as failed.
   * `kw.close()` does this too.
   *
   * @example
   * ```ts
   * await tool(args, { userToken });
   * await kw.tools.flush();
   * ```
   */
  flush(): Promise<void>;
}

/** The object behind `kw.tools`; `close` is for the Keyward client. */
export function createTools(
  api: ToolsApi,
  ownToken: () => string | Promise<string>,
  onAuditError: (err: AuditError) => void,
): KeywardTools & { close(): Promise<void> } {
  const audit = new AuditQueue(api);
  return {
    // biome-ignore lint/suspicious/noExplicitAny: the overloads above type the public calls
    withUserCredentials: ((tool: any, opts: any) =>
      wrapTool(tool, opts, { api, audit, onAuditError, ownToken })) as KeywardTools["withUserCredentials"],
    flush: () => audit.flush(),
    close: () => audit.close(),
  };
}
