import { KeywardError } from "../errors.js";
import { readBoundedJson } from "./bounded-body.js";
import { DEFAULT_LIMITS } from "./limits.js";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * True for failures that say nothing about this agent's rights: the server is down or unwell (an
 * answer past its size limit is a broken server or proxy, not a refusal).
 */
export function isOutage(err: unknown): boolean {
  return (
    err instanceof KeywardError &&
    (err.code === "server_unreachable" || err.code === "response_too_large" || (err.status ?? 0) >= 500)
  );
}

/** A request to the server failed before an answer: down, refused, reset, timed out. */
export function unreachable(url: URL, cause: unknown): KeywardError {
  const timedOut = cause instanceof Error && cause.name === "TimeoutError";
  const why = timedOut ? "timed out" : cause instanceof Error ? cause.message : "request failed";
  return new KeywardError("server_unreachable", `cannot reach Keyward at ${url.origin}: ${why}`, { cause });
}

/**
 * The §4 error body as a KeywardError; the server's message never holds a secret. A body past
 * `maxBytes` (or not JSON) is not read: the status alone then makes the error.
 */
export async function httpError(res: Response, maxBytes = DEFAULT_LIMITS.responseBytes): Promise<KeywardError> {
  const limit = { what: "an error answer", limit: "responseBytes", maxBytes };
  const body: unknown = await readBoundedJson(res, limit).catch(() => undefined);
  const e = isObject(body) && isObject(body.error) ? body.error : {};
  const code = typeof e.code === "string" ? e.code : `http_${res.status}`;
  const message = typeof e.message === "string" ? e.message : `Keyward answered HTTP ${res.status}`;
  const requestId = typeof e.request_id === "string" ? e.request_id : (res.headers.get("x-request-id") ?? undefined);
  return new KeywardError(code, message, { status: res.status, requestId });
}
