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

/** Refuses `.`/`..` segments (also percent-encoded) so a path cannot climb out of the upstream's base. */
export function upstreamPath(base: URL, rest: string): string {
  const suspicious = rest.includes(".") || rest.includes("%");
  for (const seg of suspicious ? rest.split("/") : []) {
    const s = seg.toLowerCase().replaceAll("%2e", ".");
    if (s === "." || s === "..") throw new KeywardError("invalid_request", "path must not contain . or .. segments");
  }
  const prefix = base.pathname.endsWith("/") ? base.pathname.slice(0, -1) : base.pathname;
  return `${prefix}${rest === "" ? "/" : rest}`;
}

export type UpstreamError = "upstream_unavailable" | "upstream_timeout";

/**
 * Deadlines for upstream responses, checked by one coarse timer instead of a timer per request
 * (a timer per request was a measurable share of the gateway's CPU). Resolution is a quarter of
 * the timeout, at most a second.
 */
function createDeadlines(timeoutMs: number) {
  const pending = new Map<object, { due: number; expire: () => void }>();
  const tick = Math.max(10, Math.min(1000, Math.floor(timeoutMs / 4)));
  let timer: NodeJS.Timeout | undefined;
  const sweep = () => {
    const now = performance.now();
    for (const [id, d] of pending) {
      if (d.due <= now) {
        pending.delete(id);
        d.expire();
      }
    }
    if (pending.size === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  return {
    add(id: object, expire: () => void): void {
      pending.set(id, { due: performance.now() + timeoutMs, expire });
      if (!timer) {
        timer = setInterval(sweep, tick);
        timer.unref();
      }
    },
    remove(id: object): void {
      pending.delete(id);
    },
    close(): void {
      clearInterval(timer);
      pending.clear();
    },
  };
}

/**
 * Streams a request to an upstream and its response back, both ways, without buffering: SSE and
 * chunked responses reach the caller as the upstream produces them.
 */
export function createProxy(opts: { timeoutMs: number; onResponse?: (status: number, ms: number) => void }) {
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: "lifo" }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: "lifo" }),
  };
  const deadlines = createDeadlines(opts.timeoutMs);

  function outgoingHeaders(
    req: IncomingMessage,
    extra: Record<string, string>,
    peerIp: string,
    host: string,
  ): OutgoingHttpHeaders {
    const drop = connectionListed(req.headers);
    const out: OutgoingHttpHeaders = {};
    const h = req.headers;
    for (const name in h) {
      if (HOP_BY_HOP.has(name) || CALLER_CREDENTIALS.has(name) || drop.has(name)) continue;
      if (name === "host" || name === "x-request-id" || name === "x-forwarded-for") continue;
      out[name] = h[name];
    }
    const prior = h["x-forwarded-for"];
    out["x-forwarded-for"] = prior ? `${prior}, ${peerIp}` : peerIp;
    if (h.host) out["x-forwarded-host"] = h.host;
    out["x-forwarded-proto"] = "http";
    out.host = host;
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
      const { upstream } = target;
      const path = upstreamPath(upstream, target.rest) + target.search;
      const started = performance.now();
      let answered = false; // a response arrived, or we gave up on one
      let responded = false;
      const fail = (error: UpstreamError) => {
        if (answered) return;
        answered = true;
        deadlines.remove(upReq);
        onError(error);
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
      deadlines.add(upReq, () => {
        upReq.destroy();
        fail("upstream_timeout");
      });

      upReq.on("response", (upRes) => {
        if (answered) {
          upRes.resume();
          return;
        }
        answered = true;
        responded = true;
        deadlines.remove(upReq);
        opts.onResponse?.(upRes.statusCode ?? 502, performance.now() - started);
        const drop = connectionListed(upRes.headers);
        const headers: OutgoingHttpHeaders = {};
        const uh = upRes.headers;
        for (const name in uh) {
          if (HOP_BY_HOP.has(name) || drop.has(name)) continue;
          headers[name] = uh[name];
        }
        Object.assign(headers, extra.response);
        res.writeHead(upRes.statusCode ?? 502, headers);
        // Node holds headers back until the first body byte. A stream (SSE, chunked) may not
        // have one for a while, and the caller must see the response start: flush for those,
        // and end them after the same timeout of silence. Responses whose body is on its way
        // keep headers and body in one write.
        if (uh["content-length"] === undefined) {
          upReq.setTimeout(opts.timeoutMs, () => upReq.destroy());
          if (String(uh["content-type"]).startsWith("text/event-stream")) {
            res.flushHeaders();
          } else {
            const flush = setImmediate(() => res.flushHeaders());
            upRes.once("data", () => clearImmediate(flush));
          }
        }
        upRes.pipe(res);
        upRes.on("error", () => res.destroy());
      });
      upReq.on("error", () => {
        if (responded) {
          // The response had started: all we can do is cut the caller's stream too.
          res.destroy();
          return;
        }
        fail("upstream_unavailable");
      });
      // The caller went away: stop the upstream work too.
      res.on("close", () => {
        if (!res.writableFinished) {
          deadlines.remove(upReq);
          upReq.destroy();
        }
      });
      req.pipe(upReq);
    },
    close(): void {
      deadlines.close();
      agents["http:"].destroy();
      agents["https:"].destroy();
    },
  };
}

export type GatewayProxy = ReturnType<typeof createProxy>;
