import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Transform } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import type { RedactionStream, Redactor } from "@keyward/sdk/redaction";
import type { Dispatcher } from "undici";
import {
  createUpstreamDispatcher,
  hasBody,
  passThroughHeaders,
  responseHeaders,
  type UpstreamError,
  upstreamError,
} from "../gateway/proxy.js";

/**
 * The egress data path: the agent's request goes to the upstream with the secret injected and the
 * agent's own credential removed; the answer comes back through the redactor, streamed both ways
 * with backpressure (the gateway's undici dispatcher and header handling, gateway/proxy.ts).
 *
 * Upstreams are asked for `accept-encoding: identity`, so bodies arrive scannable. One that
 * compresses anyway (gzip, deflate, br) is decompressed on the fly and sent on uncompressed;
 * any other encoding cannot be scanned, and is refused (502) rather than passed through unread.
 *
 * Redirects are never followed here (the dispatcher has no redirect handling). What the agent's
 * client may follow is decided by `location` (egress-target agentLocation).
 */

export interface EgressRequest {
  origin: string;
  /** Path and query to request (already checked). */
  path: string;
  /** The header carrying the secret, lower-case, and its full value. */
  inject: { name: string; value: string };
  redactor: Redactor;
  requestId: string;
  /** The Location the agent should see for an upstream's, or null to drop it. */
  location: (value: string) => string | null;
  /**
   * Response headers arrived: resolves to let the response through, rejects to refuse it (the
   * upstream request is aborted and the agent gets `refused`'s answer). The audit gate.
   */
  admit: (status: number) => Promise<void>;
  refused: (err: unknown) => void;
  /** No response: connection failure, timeout, an encoding that cannot be scanned. Called at most once. */
  failed: (error: UpstreamError, message: string) => void;
  /** The agent went away before the upstream answered (the request was sent). */
  abandoned: () => void;
}

const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  "x-gzip": createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/** Headers whose URL a client may follow: kept only when they stay under the credential's base_url. */
const LOCATION_HEADERS = ["location", "content-location"] as const;

type State = "waiting" | "admitting" | "streaming" | "done";

/**
 * A response of declared length up to this many bytes is gathered whole, redacted in one pass and
 * sent with its own Content-Length in one write: no redaction stream, no chunked framing. A stream
 * would hold back up to the longest pattern of it anyway; above this it streams, so the memory a
 * response holds stays bounded whatever length an upstream declares.
 */
export const WHOLE_BODY_MAX_BYTES = 16 * 1024;

/** Statuses that never carry a body, whatever their headers say. */
const NO_BODY_STATUS = new Set([204, 304]);

const HANDLER = Symbol("keyward.egressHandler");
type HandledResponse = ServerResponse & { [HANDLER]?: EgressHandler };

// One listener function each for every response (`this` is the response): no closure per request.
function onResponseClose(this: HandledResponse): void {
  this[HANDLER]?.responseClosed();
}
function onResponseDrain(this: HandledResponse): void {
  this[HANDLER]?.responseDrained();
}

class EgressHandler implements Dispatcher.DispatchHandlers {
  private state: State = "waiting";
  private abort: ((err?: Error) => void) | undefined;
  private resumeUpstream: (() => void) | undefined;
  private decoder: Transform | undefined;
  private redaction: RedactionStream | undefined;
  private completed = false;
  private corked = false;
  /** Whole-body mode: the body's chunks, gathered until the upstream completes (see WHOLE_BODY_MAX_BYTES). */
  private whole: Buffer[] | undefined;
  private wholeBytes = 0;
  private status = 0;
  private head: OutgoingHttpHeaders | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly r: EgressRequest,
    private readonly method: string,
  ) {
    (res as HandledResponse)[HANDLER] = this;
    res.on("close", onResponseClose);
    res.on("drain", onResponseDrain);
  }

  /** The agent went away (or the answer is complete). */
  responseClosed(): void {
    if (this.res.writableFinished) return;
    if (this.state === "waiting") this.r.abandoned();
    this.state = "done";
    this.abort?.();
    this.decoder?.destroy();
  }

  responseDrained(): void {
    if (this.decoder) this.decoder.resume();
    else this.resumeUpstream?.();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(status: number, raw: Buffer[] | string[] | null, resume: () => void): boolean {
    // Informational answers (100 Continue, 103 Early Hints) are the proxy's business.
    if (status < 200 || this.state !== "waiting") return true;
    this.resumeUpstream = resume;
    const headers = responseHeaders((raw ?? []) as Buffer[]);
    const encoding = String(headers["content-encoding"] ?? "identity")
      .trim()
      .toLowerCase();
    if (encoding !== "identity" && encoding !== "") {
      const decoder = DECODERS[encoding];
      if (!decoder) {
        this.fail(
          "upstream_unavailable",
          `the upstream answered with content-encoding ${encoding.slice(0, 40)}, which Keyward cannot scan for the secret`,
        );
        return false;
      }
      this.decoder = this.pipeDecoder(decoder());
      delete headers["content-encoding"];
    }
    // Redaction may change the body's length. A response of known length is no stream: its
    // headers can wait for its first bytes and leave in the same packet.
    const declared = headers["content-length"];
    const streaming = declared === undefined;
    delete headers["content-length"];
    this.placeLocations(headers);
    const head = this.redactHeaders(headers);
    head["x-request-id"] = this.r.requestId;
    const length = streaming ? Number.NaN : Number(declared);
    if (
      !this.decoder &&
      length <= WHOLE_BODY_MAX_BYTES &&
      this.method !== "HEAD" &&
      !NO_BODY_STATUS.has(status) &&
      Number.isSafeInteger(length)
    ) {
      this.whole = [];
      this.status = status;
      this.head = head;
    } else this.redaction = this.r.redactor.stream();
    this.state = "admitting";
    this.r.admit(status).then(
      () => {
        if (this.state !== "admitting") return;
        this.state = "streaming";
        if (this.whole === undefined) {
          this.res.writeHead(status, head);
          // SSE and other streams must start at once, not with their first body byte.
          if (streaming) this.res.flushHeaders();
        }
        if (this.completed) this.finish();
        else resume();
      },
      (err: unknown) => {
        if (this.state !== "admitting") return;
        this.state = "done";
        this.abort?.();
        this.decoder?.destroy();
        this.r.refused(err);
      },
    );
    return false;
  }

  onData(chunk: Buffer): boolean {
    if (this.state !== "streaming") return false;
    if (this.whole !== undefined) return this.gather(chunk);
    if (this.decoder) return this.decoder.write(chunk);
    return this.send(chunk);
  }

  /** Whole-body mode: keeps the chunk (undici frames the body by its declared length). */
  private gather(chunk: Buffer): boolean {
    this.wholeBytes += chunk.length;
    if (this.wholeBytes > WHOLE_BODY_MAX_BYTES) {
      // More than was declared: never sent on, whatever it holds.
      this.state = "done";
      this.abort?.();
      this.res.destroy();
      return false;
    }
    (this.whole as Buffer[]).push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.state === "admitting") this.completed = true;
    else if (this.state === "streaming") this.finish();
  }

  onError(err: Error): void {
    const was = this.state;
    this.state = "done";
    this.decoder?.destroy();
    if (was === "streaming") this.res.destroy();
    else if (was === "waiting" || was === "admitting") this.r.failed(upstreamError(err), "");
  }

  private fail(error: UpstreamError, message: string): void {
    this.state = "done";
    this.abort?.();
    this.r.failed(error, message);
  }

  private send(chunk: Buffer): boolean {
    const out = (this.redaction as RedactionStream).push(chunk);
    if (out.length === 0) return true;
    if (!this.corked) {
      // What is written in this turn (headers, chunks, the final chunk) leaves in one packet.
      this.corked = true;
      this.res.cork();
      process.nextTick(() => {
        this.corked = false;
        this.res.uncork();
      });
    }
    return this.res.write(out);
  }

  private finish(): void {
    if (this.whole !== undefined) {
      const body = this.whole.length === 1 ? (this.whole[0] as Buffer) : Buffer.concat(this.whole);
      this.whole = [];
      const out = this.r.redactor.redact(body).output;
      const head = this.head as OutgoingHttpHeaders;
      head["content-length"] = out.length;
      this.state = "done";
      this.res.writeHead(this.status, head);
      this.res.end(out);
      return;
    }
    const end = () => {
      this.state = "done";
      this.res.end((this.redaction as RedactionStream).end());
    };
    if (this.decoder) {
      this.decoder.once("end", end);
      this.decoder.end();
    } else end();
  }

  private pipeDecoder(decoder: Transform): Transform {
    decoder.on("data", (chunk: Buffer) => {
      if (!this.send(chunk)) decoder.pause();
    });
    decoder.on("drain", () => this.resumeUpstream?.());
    decoder.on("error", () => {
      // The upstream's compressed body is corrupt: the response has started, so cut it.
      this.state = "done";
      this.abort?.();
      this.res.destroy();
    });
    return decoder;
  }

  private placeLocations(headers: OutgoingHttpHeaders): void {
    for (const name of LOCATION_HEADERS) {
      const value = headers[name];
      if (value === undefined) continue;
      const placed = typeof value === "string" ? this.r.location(value) : null;
      if (placed === null) {
        delete headers[name];
        headers["x-keyward-location-dropped"] = "the upstream pointed outside the credential's base_url";
      } else headers[name] = placed;
    }
  }

  /** Header values (and names) with the secret removed; a name that held it is dropped whole. */
  private redactHeaders(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    const redactor = this.r.redactor;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined || redactLatin1(redactor, name) !== name) continue;
      out[name] = Array.isArray(value)
        ? value.map((v) => redactLatin1(redactor, v))
        : redactLatin1(redactor, String(value));
    }
    return out;
  }
}

/**
 * A header's text (latin1, one byte a character) with the secret removed. Text shorter than the
 * shortest pattern cannot hold one in any encoding (an escape or a line break only lengthens it),
 * so most names and values skip the scan, as the SDK's redactString skips short strings.
 */
function redactLatin1(redactor: Redactor, s: string): string {
  if (s.length < redactor.minPatternLength) return s;
  const r = redactor.redact(Buffer.from(s, "latin1"));
  return r.count === 0 ? s : r.output.toString("latin1");
}

export function createEgressProxy(opts: { timeoutMs: number }) {
  const dispatcher = createUpstreamDispatcher(opts.timeoutMs);
  return {
    forward(req: IncomingMessage, res: ServerResponse, r: EgressRequest): void {
      const headers = passThroughHeaders(req.headers);
      // Asked plain so the body can be scanned (see above).
      headers["accept-encoding"] = "identity";
      // Whole bodies only: a byte range could cut the secret where the redactor cannot see it,
      // and once redaction changes a body its Content-Range offsets would be wrong anyway.
      delete headers.range;
      delete headers["if-range"];
      headers[r.inject.name] = r.inject.value;
      const handler = new EgressHandler(res, r, req.method ?? "GET");
      dispatcher.dispatch(
        {
          origin: r.origin,
          path: r.path,
          method: (req.method ?? "GET") as Dispatcher.HttpMethod,
          headers,
          body: hasBody(req) ? req : null,
        },
        handler,
      );
    },
    close(): Promise<void> {
      return dispatcher.destroy();
    },
  };
}

export type EgressProxy = ReturnType<typeof createEgressProxy>;
