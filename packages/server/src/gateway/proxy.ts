import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { type Dispatcher, Agent as UndiciAgent } from "undici";
import { type RateLimitResult, rateLimitHeaders } from "../limits/rate-limiter.js";

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
  return joinPath(upstreamBase(base).prefix, rest);
}

function joinPath(prefix: string, rest: string): string {
  return `${prefix}${rest === "" ? "/" : rest}`;
}

/**
 * An upstream URL's origin and base path, read once per URL: `URL#origin` builds a new string on
 * every read. Agents' URLs live as long as the agent's cache entry, so the map forgets with them.
 */
const bases = new WeakMap<URL, { origin: string; prefix: string }>();

function upstreamBase(url: URL): { origin: string; prefix: string } {
  let base = bases.get(url);
  if (base === undefined) {
    const path = url.pathname;
    base = { origin: url.origin, prefix: path.endsWith("/") ? path.slice(0, -1) : path };
    bases.set(url, base);
  }
  return base;
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

/**
 * The same headers as `responseHeaders` (hop-by-hop and `Connection`-listed ones dropped), as the
 * flat `[name, value, …]` list `writeHead` takes without building an object, and without the names
 * in `ours`, which the proxy sets itself. Repeated names stay repeated lines. Returns whether the
 * upstream declared a Content-Length.
 */
export function forwardResponseHeaders(raw: Buffer[], ours: Readonly<Record<string, string>>, out: string[]): boolean {
  let connection: string | undefined;
  let hasLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString("latin1").toLowerCase();
    if (name === "connection") connection = (raw[i + 1] as Buffer).toString("latin1");
    if (HOP_BY_HOP.has(name) || Object.hasOwn(ours, name)) continue;
    if (name === "content-length") hasLength = true;
    out.push(name, (raw[i + 1] as Buffer).toString("latin1"));
  }
  if (connection && connection !== "keep-alive" && connection !== "close") {
    const listed = new Set(connection.split(",").map((n) => n.trim().toLowerCase()));
    let kept = 0;
    hasLength = false;
    for (let i = 0; i < out.length; i += 2) {
      const name = out[i] as string;
      if (listed.has(name)) continue;
      if (name === "content-length") hasLength = true;
      out[kept++] = name;
      out[kept++] = out[i + 1] as string;
    }
    out.length = kept;
  }
  for (const name in ours) out.push(name, ours[name] as string);
  return hasLength;
}

export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

/** What the gateway adds to one forwarded request and its answer. */
export interface ForwardExtra {
  /** The upstream's `Authorization` value (`Bearer <upstream JWT>`), built once per token. */
  authorization: string;
  requestId: string;
  /** The caller's rate-limit window, sent back as `RateLimit-*`; absent without a limit. */
  rate: RateLimitResult | undefined;
  peerIp: string;
}

/** What the proxy reports; fixed when it is created, so a request allocates no callback. */
export interface ProxyHooks {
  /** The upstream's response headers arrived, `ms` after the request was dispatched. */
  onResponse?: (status: number, ms: number) => void;
  /**
   * No response came (connection failure, no headers within the timeout): answer the caller.
   * Called at most once per request, never after a response started.
   */
  onFailure: (res: ServerResponse, requestId: string, error: UpstreamError) => void;
}

const HANDLER = Symbol("keyward.forwardHandler");

/**
 * The caller went away before the answer was complete: stop the upstream work too. One function
 * for every response (`this` is the response), so a request adds a listener but no closure.
 */
function onCallerClose(this: ServerResponse & { [HANDLER]?: ForwardHandler }): void {
  this[HANDLER]?.callerClosed();
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
    private readonly requestId: string,
    private readonly rate: RateLimitResult | undefined,
    private readonly hooks: ProxyHooks,
  ) {}

  callerClosed(): void {
    if (!this.res.writableFinished) this.abort?.();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(status: number, raw: Buffer[] | string[] | null, resume: () => void): boolean {
    this.responded = true;
    this.hooks.onResponse?.(status, performance.now() - this.started);
    // Keyward's own headers win over an upstream's of the same name, as they always have.
    const ours: Record<string, string> = this.rate === undefined ? {} : rateLimitHeaders(this.rate);
    ours["x-request-id"] = this.requestId;
    let hasLength: boolean;
    if (this.res.hasHeader("connection")) {
      // The server is closing and set Connection already: writeHead would then set a list's
      // pairs one by one, keeping only the last of a repeated name. The object form joins them.
      const headers = Object.assign(responseHeaders((raw ?? []) as Buffer[]), ours);
      hasLength = headers["content-length"] !== undefined;
      this.res.writeHead(status, headers);
    } else {
      const headers: string[] = [];
      hasLength = forwardResponseHeaders((raw ?? []) as Buffer[], ours, headers);
      this.res.writeHead(status, headers);
    }
    // Node holds headers back until the first body byte. A stream (SSE, chunked) may not have
    // one for a while, and the caller must see the response start.
    if (!hasLength) this.res.flushHeaders();
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
    this.hooks.onFailure(this.res, this.requestId, upstreamError(err));
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
 * Whether the caller's header `name` may reach an upstream: not hop-by-hop (nor named by
 * `Connection`, `drop`), not the caller's Keyward credentials, not what the proxy sets itself.
 * The one rule for the gateway's and egress's forwarded requests.
 */
function passesThrough(name: string, drop: ReadonlySet<string>): boolean {
  if (HOP_BY_HOP.has(name) || CALLER_CREDENTIALS.has(name) || drop.has(name)) return false;
  return name !== "host" && name !== "x-request-id" && name !== "x-forwarded-for" && name !== "expect";
}

/** A request's headers an upstream may see (`passesThrough`), as an object. */
export function passThroughHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const drop = connectionListed(h);
  const out: Record<string, string | string[]> = {};
  for (const name in h) if (passesThrough(name, drop)) out[name] = h[name] as string | string[];
  return out;
}

/**
 * The gateway's request to the upstream: the caller's headers that pass (`passesThrough`), then
 * the proxy's own (`X-Forwarded-*`, the upstream JWT, the request id), as the flat `[name, value,
 * …]` list undici takes without another object. A caller's header of a name the proxy sets is
 * left out, so the upstream sees one value only.
 */
export function forwardRequestHeaders(h: IncomingHttpHeaders, extra: ForwardExtra): string[] {
  const drop = connectionListed(h);
  const host = h.host;
  const out: string[] = [];
  for (const name in h) {
    if (!passesThrough(name, drop) || name === "x-forwarded-proto" || (host && name === "x-forwarded-host")) continue;
    const value = h[name];
    if (typeof value === "string") out.push(name, value);
    else if (value !== undefined) for (const v of value) out.push(name, v);
  }
  const prior = h["x-forwarded-for"];
  out.push("x-forwarded-for", prior ? `${prior}, ${extra.peerIp}` : extra.peerIp);
  if (host) out.push("x-forwarded-host", host);
  out.push("x-forwarded-proto", "http", "authorization", extra.authorization, "x-request-id", extra.requestId);
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
export function createProxy(opts: { timeoutMs: number } & ProxyHooks) {
  const dispatcher = createUpstreamDispatcher(opts.timeoutMs);

  return {
    /** Forwards `req` and pipes the answer into `res` (`onFailure` when no answer came). */
    forward(req: IncomingMessage, res: ServerResponse, target: ForwardTarget, extra: ForwardExtra): void {
      const handler = new ForwardHandler(res, extra.requestId, extra.rate, opts);
      (res as ServerResponse & { [HANDLER]?: ForwardHandler })[HANDLER] = handler;
      res.on("close", onCallerClose);
      const base = upstreamBase(target.upstream);
      dispatcher.dispatch(
        {
          origin: base.origin,
          path: joinPath(base.prefix, target.rest) + target.search,
          method: (req.method ?? "GET") as Dispatcher.HttpMethod,
          headers: forwardRequestHeaders(req.headers, extra),
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
