import http, {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from "node:http";
import https from "node:https";
import { KeywardError } from "../errors.js";

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

/** The caller's credentials: the upstream must never see them. */
const CALLER_CREDENTIALS = new Set(["authorization", "x-api-key", "cookie"]);

function connectionListed(headers: IncomingHttpHeaders): Set<string> {
  const c = headers.connection;
  if (!c) return new Set();
  return new Set(c.split(",").map((s) => s.trim().toLowerCase()));
}

export interface ForwardTarget {
  upstream: URL;
  /** The rest of the path after /agents/{name}, still percent-encoded, starting with "/" or empty. */
  rest: string;
  search: string;
}

/** Refuses `.`/`..` segments (also percent-encoded) so a path cannot climb out of the upstream's base. */
export function upstreamPath(base: URL, rest: string): string {
  for (const seg of rest.split("/")) {
    const s = seg.toLowerCase().replaceAll("%2e", ".");
    if (s === "." || s === "..") throw new KeywardError("invalid_request", "path must not contain . or .. segments");
  }
  const prefix = base.pathname.endsWith("/") ? base.pathname.slice(0, -1) : base.pathname;
  return `${prefix}${rest === "" ? "/" : rest}`;
}

/**
 * Streams a request to an upstream and its response back, both ways, without buffering: SSE and
 * chunked responses reach the caller as the upstream produces them.
 */
export function createProxy(opts: { timeoutMs: number }) {
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: "lifo" }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: "lifo" }),
  };

  function outgoingHeaders(
    req: IncomingMessage,
    extra: Record<string, string>,
    peerIp: string,
    host: string,
  ): OutgoingHttpHeaders {
    const drop = connectionListed(req.headers);
    const out: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name) || CALLER_CREDENTIALS.has(name) || drop.has(name)) continue;
      if (name === "host" || name === "x-request-id" || name === "x-forwarded-for") continue;
      out[name] = value;
    }
    const prior = req.headers["x-forwarded-for"];
    out["x-forwarded-for"] = prior ? `${prior}, ${peerIp}` : peerIp;
    out["x-forwarded-host"] = req.headers.host ?? "";
    out["x-forwarded-proto"] = "http";
    out.host = host;
    return Object.assign(out, extra);
  }

  return {
    forward(
      req: IncomingMessage,
      res: ServerResponse,
      target: ForwardTarget,
      extra: { request: Record<string, string>; response: Record<string, string>; peerIp: string },
    ): Promise<{ status: number } | { error: "upstream_unavailable" | "upstream_timeout" }> {
      const { upstream } = target;
      const path = upstreamPath(upstream, target.rest) + target.search;
      return new Promise((resolve) => {
        let settled = false;
        const done = (r: { status: number } | { error: "upstream_unavailable" | "upstream_timeout" }) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(r);
        };
        const upReq = (upstream.protocol === "https:" ? https : http).request({
          protocol: upstream.protocol,
          hostname: upstream.hostname.replace(/^\[|\]$/g, ""),
          port: upstream.port || undefined,
          method: req.method,
          path,
          headers: outgoingHeaders(req, extra.request, extra.peerIp, upstream.host),
          agent: agents[upstream.protocol as "http:" | "https:"],
        });
        const timer = setTimeout(() => {
          upReq.destroy();
          done({ error: "upstream_timeout" });
        }, opts.timeoutMs);

        upReq.on("response", (upRes) => {
          clearTimeout(timer);
          const drop = connectionListed(upRes.headers);
          const headers: OutgoingHttpHeaders = {};
          for (const [name, value] of Object.entries(upRes.headers)) {
            if (value === undefined || HOP_BY_HOP.has(name) || drop.has(name)) continue;
            headers[name] = value;
          }
          Object.assign(headers, extra.response);
          res.writeHead(upRes.statusCode ?? 502, headers);
          // Node holds headers back until the first body byte. A stream (SSE, chunked) may not
          // have one for a while, and the caller must see the response start: flush for those.
          // Responses whose body is on its way keep headers and body in one write.
          if (String(upRes.headers["content-type"]).startsWith("text/event-stream")) {
            res.flushHeaders();
          } else if (upRes.headers["content-length"] === undefined) {
            const flush = setImmediate(() => res.flushHeaders());
            upRes.once("data", () => clearImmediate(flush));
          }
          // Idle streams are ended after the same timeout; active ones (SSE) live as long as they talk.
          upReq.setTimeout(opts.timeoutMs, () => upReq.destroy());
          upRes.pipe(res);
          upRes.on("error", () => res.destroy());
          upRes.on("end", () => done({ status: upRes.statusCode ?? 502 }));
          upRes.on("close", () => done({ status: upRes.statusCode ?? 502 }));
        });
        upReq.on("error", () => {
          if (res.headersSent) {
            res.destroy();
            done({ status: 502 });
          } else {
            done({ error: settled ? "upstream_timeout" : "upstream_unavailable" });
          }
        });
        // The caller went away: stop the upstream work too.
        res.on("close", () => {
          if (!res.writableFinished) upReq.destroy();
        });
        req.pipe(upReq);
      });
    },
    close(): void {
      agents["http:"].destroy();
      agents["https:"].destroy();
    },
  };
}

export type GatewayProxy = ReturnType<typeof createProxy>;
