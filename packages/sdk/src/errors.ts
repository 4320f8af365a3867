/**
 * Errors the SDK throws. Every one is a {@link KeywardError} with a stable `code`: the server's own
 * code (SPEC §4 body, e.g. `invalid_key`) for HTTP errors, or one of the SDK's codes below.
 * Messages never contain a secret value, key or token.
 */

/** Codes the SDK produces itself (HTTP errors carry the server's code instead). */
export type SdkErrorCode =
  | "server_unreachable"
  | "invalid_response"
  | "unknown_credential"
  | "stale_credentials"
  | "credential_expired"
  | "cache_unreadable"
  | "cache_write_failed"
  | "event_stream_failed"
  | "closed"
  // kw.tools (SPEC §7): a call without a user token, a tool past its timeoutMs.
  | "missing_user_token"
  | "tool_timeout"
  // kw.tools audit records: a failed request, a record dropped because too many were waiting.
  | "audit_failed"
  | "audit_dropped"
  // An answer (a body, an event-stream line or event) bigger than its limit (`limits`, README).
  | "response_too_large";

/**
 * A failure with a stable code. `status` is the HTTP status when the server answered.
 *
 * @example
 * ```ts
 * try {
 *   await Keyward.connect({ url, token });
 * } catch (err) {
 *   if (err instanceof KeywardError && err.code === "key_revoked") process.exit(1);
 *   throw err;
 * }
 * ```
 */
export class KeywardError extends Error {
  /** The server's error code (SPEC §4) or an {@link SdkErrorCode}. */
  readonly code: string;
  /** The HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** The server's `request_id`, when it gave one (quote it when reporting a problem). */
  readonly requestId: string | undefined;

  constructor(
    code: string,
    message: string,
    options: { status?: number | undefined; requestId?: string | undefined; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "KeywardError";
    this.code = code;
    this.status = options.status;
    this.requestId = options.requestId;
  }
}

/**
 * Thrown by `get`/`resolve` for a name this agent cannot read: not granted in `read` mode,
 * deleted, or never existed (the three are indistinguishable on purpose).
 *
 * @example
 * ```ts
 * try {
 *   kw.get("stripe");
 * } catch (err) {
 *   if (err instanceof UnknownCredentialError) console.error(`no grant for ${err.credential}`);
 * }
 * ```
 */
export class UnknownCredentialError extends KeywardError {
  /** The name that was asked for. */
  readonly credential: string;

  constructor(name: string) {
    super("unknown_credential", `credential "${name}" is not readable by this agent`);
    this.name = "UnknownCredentialError";
    this.credential = name;
  }
}

/**
 * Thrown by `get`/`resolve` when the last successful contact with Keyward is older than
 * `maxStale`: the values held may have been rotated or revoked since.
 *
 * @example
 * ```ts
 * try {
 *   kw.get("openai");
 * } catch (err) {
 *   if (err instanceof StaleCredentialError) console.error(`Keyward unreachable since ${new Date(err.lastContact)}`);
 * }
 * ```
 */
export class StaleCredentialError extends KeywardError {
  /** Epoch milliseconds of the last successful contact with the server. */
  readonly lastContact: number;
  /** The `maxStale` in force, in milliseconds. */
  readonly maxStale: number;

  constructor(lastContact: number, maxStale: number) {
    super(
      "stale_credentials",
      `no contact with Keyward since ${new Date(lastContact).toISOString()} (longer than maxStale = ${maxStale} ms)`,
    );
    this.name = "StaleCredentialError";
    this.lastContact = lastContact;
    this.maxStale = maxStale;
  }
}

/**
 * A response from Keyward (or whatever answered in its place) was bigger than the SDK accepts: a
 * body past its byte limit, an event-stream line or event past its length. The SDK stopped reading
 * at the limit and closed the connection, so the size never costs memory. Background work reports
 * it as an `error` event and keeps serving the last good values while it backs off and retries;
 * raise the named setting of `Keyward.connect({ limits })` if the answer was genuine.
 *
 * @example
 * ```ts
 * kw.on("error", (err) => {
 *   if (err instanceof ResponseTooLargeError) log.warn(`raise limits.${err.limit} above ${err.maxSize}?`);
 * });
 * ```
 */
export class ResponseTooLargeError extends KeywardError {
  declare readonly code: "response_too_large";
  /**
   * The limit that was exceeded: a setting of `Keyward.connect({ limits })` such as
   * `credentialsBytes` or `sseLineChars`, or `jwksBytes` (the verifier's fixed 1 MiB).
   */
  readonly limit: string;
  /** Its value: bytes for bodies, characters (or lines) for the event stream. */
  readonly maxSize: number;

  constructor(what: string, limit: string, maxSize: number, options: { status?: number | undefined } = {}) {
    super("response_too_large", `${what} is too large (over ${maxSize}, limit ${limit}); it was not read`, options);
    this.name = "ResponseTooLargeError";
    this.limit = limit;
    this.maxSize = maxSize;
  }
}
