import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { type Dispatcher, Agent as UndiciAgent } from "undici";

/** Headers that describe one connection, never forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * The caller's Keyward credentials: the upstream must never see them. (Cookies are the agent's
 * business and pass through: Keyward never reads credentials from them.)
 */
const CALLER_CREDENTIALS = new Set(["authorization", "x-api-key"]);

const NO_NAMES: ReadonlySet<string> = new Set();

function connectionListed(headers: IncomingHttpHeaders): ReadonlySet<string> {
  const c = headers.connection;
  if (!c || c === "keep-alive" || c === "close") return NO_NAMES;
  return new Set(c.split(",").map((s) => s.trim().toLowerCase()));
}

export interface ForwardTarget {
  upstream: URL;
  /** The rest of the path after /agents/{name}, still percent-encoded, starting with "/" or empty. */
  rest: string;
  search: string;
}

/** The upstream's base path joined with the rest of the request path (already checked). */
export function upstreamPath(base: URL, rest: string): string {
  const prefix = base.pathname.endsWith("/") ? base.pathname.slice(0, -1) : base.pathname;
  return `${prefix}${rest === "" ? "/" : rest}`;
}

export type UpstreamError = "upstream_unavailable" | "upstream_timeout";

const TIMEOUT_CODES = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"]);

/** What a failed upstream request (no response) is answered with. */
export function upstreamError(err: Error): UpstreamError {
  return TIMEOUT_CODES.has((err as { code?: string }).code ?? "") ? "upstream_timeout" : "upstream_unavailable";
}

/** Raw header pairs from undici → a header object, without hop-by-hop headers. */
export function responseHeaders(raw: Buffer[]): OutgoingHttpHeaders {
  const headers: Record<string, string | string[]> = {};
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString("latin1").toLowerCase();
    const value = (raw[i + 1] as Buffer).toString("latin1");
    if (name === "connection") connection = value;
    if (HOP_BY_HOP.has(name)) continue;
    const prior = headers[name];
    if (prior === undefined) headers[name] = value;
    else if (Array.isArray(prior)) prior.push(value);
    else headers[name] = name === "set-cookie" ? [prior, value] : `${prior}, ${value}`;
  }
  if (connection && connection !== "keep-alive" && connection !== "close") {
    for (const n of connection.split(",")) delete headers[n.trim().toLowerCase()];
  }
  return headers;
}

export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

/**
 * One forwarded request's undici handler. A class rather than an object of closures: this runs
 * for every request, and prototype methods cost no allocation.
 */
class ForwardHandler implements Dispatcher.DispatchHandlers {
  private readonly started = performance.now();
  private responded = false;
  private abort: ((err?: Error) => void) | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly extraHeaders: Record<string, string>,
    private readonly fail: (error: UpstreamError) => void,
    private readonly onResponse: ((status: number, ms: number) => void) | undefined,
  ) {}

  /** The caller went away before the answer was complete: stop the upstream work too. */
  callerClosed(): void {
    if (!this.res.writableFinished) this.abort?.();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(status: number, raw: Buffer[] | string[] | null, resume: () => void): boolean {
    this.responded = true;
    this.onResponse?.(status, performance.now() - this.started);
    const headers = responseHeaders((raw ?? []) as Buffer[]);
    Object.assign(headers, this.extraHeaders);
    this.res.writeHead(status, headers);
    // Node holds headers back until the first body byte. A stream (SSE, chunked) may not have
    // one for a while, and the caller must see the response start.
    if (headers["content-length"] === undefined) this.res.flushHeaders();
    this.res.on("drain", resume);
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.res.write(chunk);
  }

  onComplete(): void {
    this.res.end();
  }

  onError(err: Error): void {
    if (this.responded) {
      // The response had started: all we can do is cut the caller's stream too.
      this.res.destroy();
      return;
    }
    if (this.res.destroyed) return;
    this.fail(upstreamError(err));
  }
}

/** Pooled keep-alive connections to upstreams, with the gateway's timeouts. */
export function createUpstreamDispatcher(timeoutMs: number): UndiciAgent {
  return new UndiciAgent({
    connections: 512,
    keepAliveTimeout: 60_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: { timeout: Math.min(timeoutMs, 10_000) },
  });
}

/**
 * A request's headers an upstream may see: without hop-by-hop headers (and those `Connection`
 * names), the caller's Keyward credentials, and what the proxy sets itself.
 */
export function passThroughHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const drop = connectionListed(h);
  const out: Record<string, string | string[]> = {};
  for (const name in h) {
    if (HOP_BY_HOP.has(name) || CALLER_CREDENTIALS.has(name) || drop.has(name)) continue;
    if (name === "host" || name === "x-request-id" || name === "x-forwarded-for" || name === "expect") continue;
    out[name] = h[name] as string | string[];
  }
  return out;
}

/**
 * Streams a request to an upstream and its response back, both ways, without buffering: SSE and
 * chunked responses reach the caller as the upstream produces them.
 *
 * The upstream client is undici's dispatcher rather than node:http's `http.request`: measured
 * here it proxies about twice the requests per CPU second (bench/), which is what pays for the
 * checks. Backpressure is kept: when the caller's socket is full, undici is paused until it drains.
 */
export function createProxy(opts: { timeoutMs: number; onResponse?: (status: number, ms: number) => void }) {
  const dispatcher = createUpstreamDispatcher(opts.timeoutMs);

  function outgoingHeaders(
    req: IncomingMessage,
    extra: Record<string, string>,
    peerIp: string,
  ): Record<string, string | string[]> {
    const h = req.headers;
    const out = passThroughHeaders(h);
    const prior = h["x-forwarded-for"];
    out["x-forwarded-for"] = prior ? `${prior}, ${peerIp}` : peerIp;
    if (h.host) out["x-forwarded-host"] = h.host;
    out["x-forwarded-proto"] = "http";
    return Object.assign(out, extra);
  }

  return {
    /**
     * Forwards `req` and pipes the answer into `res`. `onError` is called (at most once) when no
     * response came: connection failure or no response headers within the timeout.
     */
    forward(
      req: IncomingMessage,
      res: ServerResponse,
      target: ForwardTarget,
      extra: { request: Record<string, string>; response: Record<string, string>; peerIp: string },
      onError: (error: UpstreamError) => void,
    ): void {
      const handler = new ForwardHandler(res, extra.response, onError, opts.onResponse);
      res.on("close", () => handler.callerClosed());
      dispatcher.dispatch(
        {
          origin: target.upstream.origin,
          path: upstreamPath(target.upstream, target.rest) + target.search,
          method: (req.method ?? "GET") as Dispatcher.HttpMethod,
          headers: outgoingHeaders(req, extra.request, extra.peerIp),
          body: hasBody(req) ? req : null,
        },
        handler,
      );
    },
    close(): void {
      void dispatcher.destroy();
    },
  };
}

export type GatewayProxy = ReturnType<typeof createProxy>;
