import { KeywardError, ResponseTooLargeError } from "../errors.js";
import { readBoundedJson } from "../http/bounded-body.js";
import { httpError, unreachable } from "../http/http-errors.js";
import type { ResolvedOptions } from "./options.js";

/** A value as held in memory. Entries are replaced, never mutated, on a change. */
export interface CredentialEntry {
  readonly value: string;
  readonly version: number;
  /** Epoch ms; set for token providers (`oauth2_client_credentials`). */
  readonly expiresAt: number | undefined;
}

/** `GET /v1/credentials` answered 200 (a full set without `since`, a delta with it). */
export interface CredentialsPage {
  credentials: Map<string, CredentialEntry>;
  removed: string[];
  cursor: string;
  etag: string | undefined;
  /** Granted but not servable right now (e.g. a token provider failing), as the server explains. */
  unavailable: { name: string; code: string; message: string }[];
}

export interface CredentialsApi {
  /** `undefined` means 304: nothing changed since `etag`. */
  fetchCredentials(q: { since?: string | undefined; etag?: string | undefined }): Promise<CredentialsPage | undefined>;
  /** Opens `GET /v1/credentials/events`; the caller reads (or cancels) the body. */
  openEvents(lastEventId: string, signal: AbortSignal): Promise<Response>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Why a request was aborted (our timeout says "TimeoutError"), whatever the transport reports. */
const abortReason = (signal: AbortSignal): Error | undefined =>
  signal.aborted && signal.reason instanceof Error ? signal.reason : undefined;

function invalid(why: string): KeywardError {
  return new KeywardError("invalid_response", `unexpected answer from GET /v1/credentials: ${why}`);
}

/** Checks the §6 shape field by field: a server that answers something else must not poison the cache. */
export function parsePage(body: unknown, etag: string | undefined): CredentialsPage {
  if (!isObject(body) || !isObject(body.credentials)) throw invalid("no credentials object");
  const credentials = new Map<string, CredentialEntry>();
  for (const [name, raw] of Object.entries(body.credentials)) {
    if (!isObject(raw) || typeof raw.value !== "string" || !Number.isSafeInteger(raw.version)) {
      throw invalid(`credential "${name}" has no string value or integer version`);
    }
    let expiresAt: number | undefined;
    if (raw.expires_at !== undefined && raw.expires_at !== null) {
      expiresAt = typeof raw.expires_at === "string" ? Date.parse(raw.expires_at) : Number.NaN;
      if (Number.isNaN(expiresAt)) throw invalid(`credential "${name}" has an unreadable expires_at`);
    }
    credentials.set(name, { value: raw.value, version: raw.version as number, expiresAt });
  }
  const removed = body.removed ?? [];
  if (!Array.isArray(removed) || !removed.every((n) => typeof n === "string")) throw invalid("removed is not a list");
  if (typeof body.cursor !== "string" && typeof body.cursor !== "number") throw invalid("no cursor");
  const unavailable: CredentialsPage["unavailable"] = [];
  if (isObject(body.unavailable)) {
    for (const [name, why] of Object.entries(body.unavailable)) {
      const code = isObject(why) && typeof why.code === "string" ? why.code : "credential_unavailable";
      const message = isObject(why) && typeof why.message === "string" ? why.message : `${name} is unavailable`;
      unavailable.push({ name, code, message });
    }
  }
  return { credentials, removed, cursor: String(body.cursor), etag, unavailable };
}

/**
 * A signal that aborts when the client closes or after `ms`. Not `AbortSignal.any` with
 * `AbortSignal.timeout`: on Node 20 the combined signal can be garbage-collected with its timeout
 * source and then never fires, leaving a request to a silent server hanging forever.
 */
function requestDeadline(closed: AbortSignal, ms: number): { signal: AbortSignal; done(): void } {
  const ctrl = new AbortController();
  const onClose = () => ctrl.abort(closed.reason);
  const timer = setTimeout(() => ctrl.abort(new DOMException("request timed out", "TimeoutError")), ms);
  timer.unref();
  closed.addEventListener("abort", onClose, { once: true });
  if (closed.aborted) onClose();
  return {
    signal: ctrl.signal,
    done() {
      clearTimeout(timer);
      closed.removeEventListener("abort", onClose);
    },
  };
}

export function createCredentialsApi(opts: ResolvedOptions, closed: AbortSignal): CredentialsApi {
  const credentialsUrl = new URL("v1/credentials", opts.url);
  const eventsUrl = new URL("v1/credentials/events", opts.url);
  const credentialsLimit = {
    what: "the answer of GET /v1/credentials",
    limit: "credentialsBytes",
    maxBytes: opts.limits.credentialsBytes,
  };

  async function send(url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    const token = await opts.token();
    try {
      return await opts.fetch(url, { headers: { ...headers, authorization: `Bearer ${token}` }, signal });
    } catch (err) {
      if (closed.aborted) throw new KeywardError("closed", "the Keyward client is closed", { cause: err });
      throw unreachable(opts.url, abortReason(signal) ?? err);
    }
  }

  return {
    async fetchCredentials({ since, etag }) {
      const url = new URL(credentialsUrl);
      if (since !== undefined) url.searchParams.set("since", since);
      const headers: Record<string, string> = { accept: "application/json" };
      if (etag !== undefined) headers["if-none-match"] = etag;
      const deadline = requestDeadline(closed, opts.requestTimeoutMs);
      try {
        const res = await send(url, headers, deadline.signal);
        if (res.status === 304) {
          await res.body?.cancel();
          return undefined;
        }
        if (!res.ok) throw await httpError(res, opts.limits.responseBytes);
        let body: unknown;
        try {
          body = await readBoundedJson(res, credentialsLimit);
        } catch (err) {
          if (err instanceof ResponseTooLargeError) throw err;
          throw deadline.signal.aborted
            ? unreachable(opts.url, abortReason(deadline.signal) ?? err)
            : invalid("not JSON");
        }
        return parsePage(body, res.headers.get("etag") ?? undefined);
      } finally {
        deadline.done();
      }
    },

    openEvents(lastEventId, signal) {
      const headers: Record<string, string> = { accept: "text/event-stream", "cache-control": "no-cache" };
      if (lastEventId !== "") headers["last-event-id"] = lastEventId;
      return send(eventsUrl, headers, signal);
    },
  };
}
