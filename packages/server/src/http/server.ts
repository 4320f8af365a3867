import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KeywardError } from "../errors.js";
import type { Logger } from "../ops/logger.js";
import type { Metrics } from "../ops/metrics.js";
import { scrubString } from "../ops/text-scrub.js";
import { StoreUnavailableError } from "../store/db.js";
import type { HttpConfig } from "./http-config.js";
import { sendError } from "./respond.js";
import { assertQueryClean, createContext, type Handler, type RequestContext, type Router } from "./router.js";

export interface HttpServer {
  server: http.Server;
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting, lets in-flight requests finish (up to `timeoutMs`), then closes the rest. */
  close(timeoutMs: number): Promise<void>;
}

const RAW_400 = "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
const RAW_408 = "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

function routeGroup(path: string): string {
  if (path.startsWith("/agents/")) return "gateway";
  if (path.startsWith("/egress/")) return "egress";
  if (path.startsWith("/admin/")) return "admin";
  if (path.startsWith("/mcp/")) return "mcp";
  if (path === "/v1/verify") return "verify";
  if (path.startsWith("/.well-known/")) return "well-known";
  if (path === "/metrics" || path === "/healthz" || path === "/readyz") return "ops";
  return "other";
}

/** Turns any thrown error into the one error body; never leaks internals, never a crash. */
function handleError(err: unknown, ctx: RequestContext, logger: Logger): void {
  if (err instanceof KeywardError && err.code === "audit_unavailable") {
    // Operators must hear about this one: requests are being refused because of it.
    logger.error(
      { request_id: ctx.requestId, cause: String((err.cause as Error)?.message ?? "") },
      "audit write failed",
    );
  }
  if (err instanceof KeywardError) {
    sendError(ctx.res, err.code, err.message, ctx.requestId, err.headers);
    return;
  }
  if (err instanceof StoreUnavailableError) {
    logger.error(
      { request_id: ctx.requestId, cause: String((err.cause as Error)?.message ?? "") },
      "store unavailable",
    );
    sendError(ctx.res, "store_unavailable", "the store is unavailable; try again", ctx.requestId, {
      "retry-after": "1",
    });
    return;
  }
  logger.error(
    { request_id: ctx.requestId, err: (err as Error)?.message, stack: (err as Error)?.stack },
    "unhandled error",
  );
  sendError(ctx.res, "internal_error", "internal error", ctx.requestId);
}

/**
 * The access log's line, written when the response is finished (or the client went away first:
 * `close` without `finish`, status as far as it got). The path only, scrubbed: a query can carry
 * anything a caller chose to put there. `key_id` names the key, never its secret.
 */
function logRequest(ctx: RequestContext, logger: Logger): void {
  const started = performance.now();
  const { res } = ctx;
  res.once("close", () =>
    logger.info(
      {
        request_id: ctx.requestId,
        method: ctx.method,
        path: scrubString(ctx.path),
        status: res.statusCode,
        ms: Math.round((performance.now() - started) * 100) / 100,
        ...(ctx.keyId ? { key_id: ctx.keyId } : {}),
        ...(res.writableFinished ? {} : { aborted: true }),
      },
      "request",
    ),
  );
}

export function createHttpServer(deps: {
  router: Router;
  gateway: Handler;
  /** `ANY /egress/{credential}/{path…}`: a prefix route, like the gateway's. */
  egress?: Handler;
  logger: Logger;
  metrics: Metrics;
  /** `http:` in the config file; every field has a default there. */
  timeouts: HttpConfig;
  /** One info line per request (`access_log`); off by default: its cost is in docs/benchmarks.md. */
  accessLog?: boolean;
}): HttpServer {
  const { router, gateway, logger, metrics } = deps;
  let closing = false;

  // The access line is a closed list of fields built here (ids, a scrubbed path, numbers), none
  // of which can hold a secret, so it skips pino's redaction: with the ~60 censored paths that
  // pass was 85 % of a line's cost (measured: docs/benchmarks.md, "Access log").
  const accessLogger =
    deps.accessLog === true && logger.isLevelEnabled("info") ? logger.child({}, { redact: [] }) : undefined;

  /**
   * Failures the gateway throws (store or audit unavailable, bad paths) are counted here, as
   * requests and as decisions, so an outage shows in the same series as normal traffic.
   */
  function gatewayFailed(err: unknown, ctx: RequestContext): void {
    handleError(err, ctx, logger);
    metrics.requests.inc("gateway", String(ctx.res.statusCode));
    metrics.decisions.inc(
      err instanceof KeywardError
        ? err.code
        : err instanceof StoreUnavailableError
          ? "store_unavailable"
          : "internal_error",
    );
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const ctx = createContext(req, res);
    if (closing) res.setHeader("connection", "close");
    if (accessLogger) logRequest(ctx, accessLogger);
    if (ctx.path.startsWith("/agents/")) {
      // The gateway counts its own requests (it knows each status) and, on a cache hit, runs
      // synchronously: no promise to create or await, and no closure unless it goes async.
      try {
        const pending = gateway(ctx);
        if (pending) pending.catch((err: unknown) => gatewayFailed(err, ctx));
      } catch (err) {
        gatewayFailed(err, ctx);
      }
      return;
    }
    res.on("finish", () => metrics.requests.inc(routeGroup(ctx.path), String(res.statusCode)));
    void route(ctx);
  }

  async function route(ctx: RequestContext): Promise<void> {
    try {
      assertQueryClean(ctx);
      const { handler, params, pattern } =
        deps.egress && ctx.path.startsWith("/egress/")
          ? { handler: deps.egress, params: {}, pattern: undefined }
          : router.match(ctx.method, ctx.path);
      ctx.params = params;
      ctx.route = pattern;
      await handler(ctx);
    } catch (err) {
      handleError(err, ctx, logger);
    }
  }

  const { headers_timeout_ms, request_timeout_ms, keep_alive_timeout_ms } = deps.timeouts;
  // A client that sends its headers or its body slowly holds a socket and a request slot for as
  // long as it likes unless both timeouts are set (slowloris). Node measures requestTimeout
  // from the first byte of a request until the request (body included) is fully received, and
  // stops the clock there: a long response (SSE, a streamed upstream answer, MCP progress) is
  // never cut by it. `timeout` (socket inactivity) stays 0 for the same streams' sake.
  // Node only looks at the clocks every connectionsCheckingInterval (default 30 s, which would
  // let a 10 s headers timeout run to 40 s): check at a tenth of the shortest timeout instead.
  const server = http.createServer(
    {
      headersTimeout: headers_timeout_ms,
      requestTimeout: request_timeout_ms,
      keepAliveTimeout: keep_alive_timeout_ms,
      connectionsCheckingInterval: Math.min(5_000, Math.max(50, Math.floor(headers_timeout_ms / 10))),
    },
    (req, res) => {
      handle(req, res);
    },
  );
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    // A raw answer is only written, as Node's own default handler does, when no response has
    // started on this socket (a slow gateway upload may already be getting its upstream's
    // answer): bytes written mid-response would corrupt it. Then the socket is cut, since a
    // slow client would hold a half-closed one open.
    const started = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    if (socket.writable && !started) socket.write(err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? RAW_408 : RAW_400);
    socket.destroy();
  });

  return {
    server,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        // Node's default backlog (511) overflows when a thousand clients connect at once (the
        // kernel then resets them); the kernel still caps this at net.core.somaxconn.
        server.listen({ port, host, backlog: 4096 }, () => {
          server.off("error", reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    async close(timeoutMs) {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
