import { KeywardError } from "../errors.js";
import { httpError, unreachable } from "../http/http-errors.js";
import type { CredentialsApi } from "./credentials-api.js";
import type { Clock } from "./options.js";
import { type SseEvent, type SseLimits, SseParser } from "./sse-parser.js";

export interface StreamCallbacks {
  /** The server accepted the stream (200, text/event-stream). */
  open(): void;
  /** Bytes arrived: an event or a heartbeat. */
  data(): void;
  event(event: SseEvent): void;
}

export interface StreamEnd {
  /** `unavailable`: the server has no event stream (404/405/501 or not SSE); poll instead. */
  kind: "ended" | "failed" | "unavailable" | "closed";
  /** At least one byte arrived: the connection worked, whatever ended it. */
  gotData: boolean;
  lastEventId: string;
  error?: KeywardError;
}

export interface StreamSettings {
  api: CredentialsApi;
  clock: Clock;
  heartbeatTimeoutMs: number;
  url: URL;
  closed: AbortSignal;
  lastEventId: string;
  /** Bounds of one line and one event; past them the stream ends with `response_too_large`. */
  limits: SseLimits & { responseBytes: number };
}

const NO_STREAM = new Set([404, 405, 501]);

/**
 * Holds one connection to `GET /v1/credentials/events` until it ends, fails, or stays silent for
 * `heartbeatTimeoutMs` (a half-open TCP connection or a buffering proxy never errors by itself, so
 * silence is the only sign of death). Resolves, never rejects; reconnecting is the caller's job.
 */
export async function runEventStream(s: StreamSettings, cb: StreamCallbacks): Promise<StreamEnd> {
  const ctrl = new AbortController();
  const abort = () => ctrl.abort();
  s.closed.addEventListener("abort", abort, { once: true });
  let lastData = s.clock.now();
  let silent = false;
  let gotData = false;
  const parser = new SseParser({ event: (e) => cb.event(e), comment: () => {} }, s.lastEventId, s.limits);
  const check = () => {
    const idle = s.clock.now() - lastData;
    if (idle < s.heartbeatTimeoutMs) {
      watchdog = s.clock.setTimeout(check, s.heartbeatTimeoutMs - idle);
      return;
    }
    silent = true;
    ctrl.abort();
  };
  // Armed before the request, so a server that never sends headers is caught too.
  let watchdog = s.clock.setTimeout(check, s.heartbeatTimeoutMs);
  const end = (kind: StreamEnd["kind"], error?: KeywardError): StreamEnd =>
    error === undefined
      ? { kind, gotData, lastEventId: parser.lastEventId }
      : { kind, gotData, lastEventId: parser.lastEventId, error };

  try {
    const res = await s.api.openEvents(s.lastEventId, ctrl.signal);
    const isSse = (res.headers.get("content-type") ?? "").toLowerCase().startsWith("text/event-stream");
    if (NO_STREAM.has(res.status) || (res.ok && !isSse)) {
      await res.body?.cancel().catch(() => {});
      return end("unavailable");
    }
    if (!res.ok || res.body === null) return end("failed", await httpError(res, s.limits.responseBytes));
    cb.open();
    lastData = s.clock.now();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return end("ended");
      gotData = true;
      lastData = s.clock.now();
      cb.data();
      parser.push(decoder.decode(value, { stream: true }));
    }
  } catch (err) {
    if (s.closed.aborted) return end("closed");
    if (silent) {
      return end(
        "failed",
        new KeywardError("event_stream_failed", `event stream silent for ${s.heartbeatTimeoutMs} ms; reconnecting`),
      );
    }
    if (err instanceof KeywardError) return end("failed", err);
    return end("failed", unreachable(s.url, err));
  } finally {
    s.clock.clearTimeout(watchdog);
    s.closed.removeEventListener("abort", abort);
    ctrl.abort();
  }
}
