import { KeywardError, ResponseTooLargeError } from "./errors.js";
import { readBoundedText } from "./http/bounded-body.js";
import { DEFAULT_LIMITS } from "./http/limits.js";

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const DEFAULT_TIMEOUT_MS = 10_000;
/** An OAuth error body is small; anything longer is not one and is not read into a message. */
const MAX_DESCRIPTION_CHARS = 500;

export interface ExchangeOptions {
  /** Keyward's base URL; the request goes to `${url}/oauth/token`. */
  url: string;
  /** The calling agent's own credential: its agent key (`kwk_…`) or an access token of its own. */
  actorToken: string;
  /** The token the agent received for its caller (typically the JWT the gateway forwarded). */
  subjectToken: string;
  /** The downstream agent's name; the new token's `aud`. */
  audience: string;
  /** The scopes to ask for, a subset of the subject token's; default: the server's choice. */
  scope?: string | readonly string[];
  /** Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Default 10 s. */
  timeoutMs?: number;
  /**
   * Largest answer read, in bytes; a longer one fails with `ResponseTooLargeError`
   * (`response_too_large`) as soon as it passes the limit. Default 1 MiB.
   */
  maxResponseBytes?: number;
}

export interface ExchangedToken {
  /** The delegated access token, for `Authorization: Bearer …` on the downstream call. */
  accessToken: string;
  /** Seconds until it expires (never later than the subject token). */
  expiresIn: number;
  /** The granted scopes, space-separated. */
  scope: string;
  /** `urn:ietf:params:oauth:token-type:access_token`. */
  issuedTokenType: string;
}

/**
 * The token endpoint refused the exchange (a {@link KeywardError}). `error` is the RFC 6749 / RFC 8693 code
 * (`invalid_target` when the agent may not call that audience, `invalid_scope` for scope
 * escalation, `invalid_grant` for a bad subject token, `invalid_client` for a bad actor key), or
 * `invalid_response` when the server's answer was not an OAuth response at all. The message never
 * contains either token.
 *
 * @example
 * ```ts
 * try {
 *   await exchangeToken({ url, actorToken, subjectToken, audience: "tools" });
 * } catch (err) {
 *   if (err instanceof ExchangeError && err.error === "invalid_target") console.warn("not allowed to call tools");
 *   else throw err;
 * }
 * ```
 */
export class ExchangeError extends KeywardError {
  /** The OAuth error code; also the error's `code`. */
  readonly error: string;
  readonly errorDescription: string | undefined;
  declare readonly status: number;
  constructor(error: string, status: number, errorDescription?: string) {
    super(
      error,
      errorDescription ? `token exchange failed: ${error}: ${errorDescription}` : `token exchange failed: ${error}`,
      {
        status,
      },
    );
    this.name = "ExchangeError";
    this.error = error;
    this.errorDescription = errorDescription;
  }
}

/**
 * Exchanges the caller's token for a delegated one bound to a downstream agent (RFC 8693 token
 * exchange at `${url}/oauth/token`). The result has `aud` = `audience`, the same subject, an `act`
 * claim naming this agent, at most the requested scopes, and expires no later than the subject
 * token. Refusals throw `ExchangeError`; an answer larger than `maxResponseBytes` throws
 * `ResponseTooLargeError`.
 *
 * @example
 * ```ts
 * import { exchangeToken } from "@keyward/sdk";
 *
 * // Inside agent W, handling a request the gateway forwarded with the caller's JWT:
 * const { accessToken } = await exchangeToken({
 *   url: "https://keyward.internal",
 *   actorToken: process.env.KEYWARD_AGENT_KEY!, // W's own kwk_… key
 *   subjectToken: callerJwt,
 *   audience: "research",
 *   scope: ["agent:research", "read:docs"],
 * });
 * await fetch("https://keyward.internal/agents/research/run", { headers: { authorization: `Bearer ${accessToken}` } });
 * ```
 */
export async function exchangeToken(options: ExchangeOptions): Promise<ExchangedToken> {
  const { endpoint, scope } = validate(options);
  const form = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE,
    subject_token: options.subjectToken,
    subject_token_type: ACCESS_TOKEN_TYPE,
    actor_token: options.actorToken,
    actor_token_type: ACCESS_TOKEN_TYPE,
    audience: options.audience,
  });
  if (scope !== undefined) form.set("scope", scope);

  const res = await (options.fetch ?? globalThis.fetch)(endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: form.toString(),
    redirect: "manual",
    signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
  });
  const body = await readJson(res, options.maxResponseBytes ?? DEFAULT_LIMITS.responseBytes);
  const secrets = [options.subjectToken, options.actorToken];
  if (!res.ok) {
    if (body && typeof body.error === "string") {
      const description = typeof body.error_description === "string" ? body.error_description : undefined;
      throw new ExchangeError(scrub(body.error, secrets), res.status, description && scrub(description, secrets));
    }
    throw new ExchangeError("invalid_response", res.status, `the token endpoint answered HTTP ${res.status}`);
  }
  const { access_token, expires_in, issued_token_type } = body ?? {};
  if (typeof access_token !== "string" || access_token.length === 0 || typeof expires_in !== "number") {
    throw new ExchangeError(
      "invalid_response",
      res.status,
      "the token endpoint's answer has no access_token or expires_in",
    );
  }
  return {
    accessToken: access_token,
    expiresIn: expires_in,
    // RFC 8693 §2.2.1: scope may be left out when it is exactly what was requested.
    scope: typeof body?.scope === "string" ? body.scope : (scope ?? ""),
    issuedTokenType: typeof issued_token_type === "string" ? issued_token_type : ACCESS_TOKEN_TYPE,
  };
}

function validate(options: ExchangeOptions): { endpoint: string; scope: string | undefined } {
  let endpoint: URL;
  try {
    endpoint = new URL(`${String(options?.url).replace(/\/+$/, "")}/oauth/token`);
  } catch {
    throw new TypeError("exchangeToken: url must be an http(s) URL");
  }
  if (endpoint.protocol !== "https:" && endpoint.protocol !== "http:") {
    throw new TypeError("exchangeToken: url must be an http(s) URL");
  }
  for (const name of ["actorToken", "subjectToken", "audience"] as const) {
    if (typeof options[name] !== "string" || options[name].length === 0) {
      throw new TypeError(`exchangeToken: ${name} must be a non-empty string`);
    }
  }
  const scope =
    typeof options.scope === "string" || options.scope === undefined ? options.scope : options.scope.join(" ");
  if (typeof options.fetch !== "function" && typeof globalThis.fetch !== "function") {
    throw new TypeError("exchangeToken: no fetch available; pass options.fetch");
  }
  return { endpoint: endpoint.href, scope };
}

async function readJson(res: Response, maxBytes: number): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readBoundedText(res, { what: "the answer of POST /oauth/token", limit: "responseBytes", maxBytes });
  } catch (err) {
    // An oversized answer is its own error, not "not an OAuth response".
    if (err instanceof ResponseTooLargeError) throw err;
    return undefined;
  }
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The server should never echo a token, but a message is where a token would leak: make sure. */
function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 8) out = out.split(secret).join("[redacted]");
  }
  return out.slice(0, MAX_DESCRIPTION_CHARS);
}
