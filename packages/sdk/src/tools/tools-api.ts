import { KeywardError, ResponseTooLargeError } from "../errors.js";
import { readBoundedText } from "../http/bounded-body.js";
import { httpError, unreachable } from "../http/http-errors.js";
import { DEFAULT_LIMITS } from "../http/limits.js";
import { type AuditEvent, UserCredentialError } from "./errors.js";

/** What the tool wrapper needs from Keyward: the two agent endpoints of SPEC §6. */
export interface ToolsApi {
  /** `POST /v1/tools/credentials`: every requested value, or a {@link UserCredentialError}. */
  userCredentials(userToken: string, names: readonly string[], signal: AbortSignal): Promise<Map<string, string>>;
  /** `POST /v1/audit/events`. */
  audit(event: AuditEvent): Promise<void>;
}

export interface ToolsApiOptions {
  url: URL;
  /** The agent's own key or access token (the Keyward client's `token`). */
  token: () => string | Promise<string>;
  fetch: typeof globalThis.fetch;
  requestTimeoutMs: number;
  /** Largest answer read, in bytes (the client's `limits.responseBytes`). Default 1 MiB. */
  maxResponseBytes?: number;
  /** Aborts when the Keyward client closes. */
  closed: AbortSignal;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * A signal aborting when `closed` or `signal` does, or after `ms` (reason: a TimeoutError). Not
 * `AbortSignal.any`: see `requestDeadline` in client/credentials-api.ts (Node 20 can collect it).
 * Requests in flight hang off one listener on `closed` (a thousand concurrent tool calls would
 * otherwise put a thousand listeners on the client's signal).
 */
function deadlines(closed: AbortSignal) {
  const open = new Set<AbortController>();
  closed.addEventListener("abort", () => {
    for (const c of open) c.abort(closed.reason);
  });
  return (signal: AbortSignal | undefined, ms: number): { signal: AbortSignal; done(): void } => {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(new DOMException("request timed out", "TimeoutError")), ms);
    timer.unref();
    const onAbort = () => ctrl.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    open.add(ctrl);
    return {
      signal: ctrl.signal,
      done() {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        open.delete(ctrl);
      },
    };
  };
}

const invalid = (why: string) =>
  new KeywardError("invalid_response", `unexpected answer from POST /v1/tools/credentials: ${why}`);

export function createToolsApi(opts: ToolsApiOptions): ToolsApi {
  const credentialsUrl = new URL("v1/tools/credentials", opts.url);
  const auditUrl = new URL("v1/audit/events", opts.url);
  const deadline = deadlines(opts.closed);
  const maxBytes = opts.maxResponseBytes ?? DEFAULT_LIMITS.responseBytes;

  /** POSTs JSON; answers the response, or throws when no answer came (the caller's signal first). */
  async function post(url: URL, body: unknown, signal: AbortSignal | undefined): Promise<Response> {
    if (opts.closed.aborted) throw new KeywardError("closed", "the Keyward client is closed");
    const d = deadline(signal, opts.requestTimeoutMs);
    try {
      const token = await opts.token();
      const res = await opts.fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
        signal: d.signal,
      });
      // Read the body under the same deadline: a server that stalls mid-answer is unreachable too.
      // Bounded: the answer to a tool's request must not be able to take the agent's memory.
      const text = await readBoundedText(res, {
        what: `the answer of POST ${url.pathname}`,
        limit: "responseBytes",
        maxBytes,
      });
      return new Response(text === "" ? null : text, { status: res.status, headers: res.headers });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (err instanceof ResponseTooLargeError) throw err;
      if (opts.closed.aborted) throw new KeywardError("closed", "the Keyward client is closed", { cause: err });
      const reason = d.signal.aborted && d.signal.reason instanceof Error ? d.signal.reason : err;
      throw unreachable(opts.url, reason);
    } finally {
      d.done();
    }
  }

  return {
    async userCredentials(userToken, names, signal) {
      // The request body holds the user's token: nothing below puts the body into an error.
      const res = await post(credentialsUrl, { user_token: userToken, names }, signal);
      if (!res.ok) {
        const err = await httpError(res);
        throw new UserCredentialError(err.code, err.message, { status: err.status, requestId: err.requestId });
      }
      let body: unknown;
      try {
        body = await res.json();
      } catch {
        throw invalid("not JSON");
      }
      if (!isObject(body) || !isObject(body.credentials)) throw invalid("no credentials object");
      const values = new Map<string, string>();
      for (const name of names) {
        const value = Object.hasOwn(body.credentials, name) ? body.credentials[name] : undefined;
        if (typeof value !== "string") throw invalid(`no string value for "${name}"`);
        values.set(name, value);
      }
      return values;
    },

    async audit(event) {
      const res = await post(auditUrl, event, undefined);
      if (!res.ok) throw await httpError(res);
    },
  };
}
