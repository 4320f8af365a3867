import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { KeywardError } from "../errors.js";
import type { DocumentedRoute, OperationDoc } from "../openapi/operation.js";

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  /** Path without the query string, still percent-encoded. */
  path: string;
  query: URLSearchParams;
  /** Path parameters, percent-decoded. */
  params: Record<string, string>;
  requestId: string;
  /** The TCP peer's address (proxies are resolved by the gateway, not here). */
  peerIp: string;
  /** The key the request's credential rests on, once authentication knows it (the access log's `key_id`). */
  keyId?: string | undefined;
  /** The matched route's pattern (`/admin/v1/keys/:id`): what admin authorization looks up. */
  route?: string | undefined;
}

export type Handler = (ctx: RequestContext) => Promise<void> | void;

/** A handler, optionally preceded by its OpenAPI description (openapi/operation.ts). */
export type RouteArgs = [handler: Handler] | [doc: OperationDoc, handler: Handler];

interface Route {
  method: string;
  pattern: string;
  segments: string[];
  handler: Handler;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A small exact-segment router; `:name` segments capture one path segment, a final `*` the rest. */
export class Router {
  private readonly routes: Route[] = [];
  private readonly docs: DocumentedRoute[] = [];

  on(method: string | string[], pattern: string, ...args: RouteArgs): this {
    const handler = args.length === 1 ? args[0] : args[1];
    for (const m of Array.isArray(method) ? method : [method]) {
      this.routes.push({ method: m, pattern, segments: pattern.split("/").filter(Boolean), handler });
      if (args.length === 2) this.docs.push({ method: m, pattern, doc: args[0] });
    }
    return this;
  }

  get(pattern: string, ...args: RouteArgs): this {
    return this.on("GET", pattern, ...args);
  }
  post(pattern: string, ...args: RouteArgs): this {
    return this.on("POST", pattern, ...args);
  }
  put(pattern: string, ...args: RouteArgs): this {
    return this.on("PUT", pattern, ...args);
  }
  patch(pattern: string, ...args: RouteArgs): this {
    return this.on("PATCH", pattern, ...args);
  }
  delete(pattern: string, ...args: RouteArgs): this {
    return this.on("DELETE", pattern, ...args);
  }

  /** The routes registered with a description, in registration order (for `/openapi.json`). */
  documented(): readonly DocumentedRoute[] {
    return this.docs;
  }

  /** Finds the handler for a request; throws not_found / method_not_allowed. */
  match(method: string, path: string): { handler: Handler; params: Record<string, string>; pattern?: string } {
    const parts = path.split("/").filter(Boolean);
    const allowed: string[] = [];
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      if (route.method === method || (method === "HEAD" && route.method === "GET")) {
        return { handler: route.handler, params, pattern: route.pattern };
      }
      allowed.push(route.method);
      if (route.method === "GET") allowed.push("HEAD");
    }
    if (allowed.length > 0) {
      throw new KeywardError("method_not_allowed", `method ${method} is not allowed here`, {
        allow: allowed.join(", "),
      });
    }
    throw new KeywardError("not_found", "no such endpoint");
  }
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  // A final `*` takes the rest of the path, however deep (or nothing): the handler reads it from
  // `ctx.path`, still encoded, and judges it itself (the console's static files).
  const rest = pattern[pattern.length - 1] === "*";
  const fixed = rest ? pattern.length - 1 : pattern.length;
  if (rest ? parts.length < fixed : parts.length !== fixed) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < fixed; i++) {
    const p = pattern[i] as string;
    const v = parts[i] as string;
    if (p.startsWith(":")) {
      params[p.slice(1)] = decodeSegment(v);
    } else if (p !== v) {
      return undefined;
    }
  }
  return params;
}

function decodeSegment(v: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(v);
  } catch {
    throw new KeywardError("invalid_request", "path segment is not valid percent-encoding");
  }
  if (decoded.includes("\0")) throw new KeywardError("invalid_request", "path segment must not contain NUL");
  return decoded;
}

/** Refuses NUL in query parameters once, at the edge (PostgreSQL text cannot hold it). */
export function assertQueryClean(ctx: RequestContext): void {
  for (const v of ctx.query.values()) {
    if (v.includes("\0")) throw new KeywardError("invalid_request", "query parameters must not contain NUL");
  }
}

/**
 * Request ids Keyward makes itself: a random prefix per process and a counter. Unique (the prefix
 * tells processes and restarts apart), cheap on every request, and no secret: an id is shown to
 * the caller, logged and audited, and was never meant to be unguessable.
 */
const ID_PREFIX = `${randomBytes(8).toString("hex")}-`;
let idCounter = 0;

function newRequestId(): string {
  idCounter++;
  return ID_PREFIX + idCounter.toString(36);
}

/**
 * The context every handler receives. A class: its lazy `query` lives on the prototype, so a
 * request allocates one object and no closure.
 */
class Context implements RequestContext {
  readonly method: string;
  readonly path: string;
  params: Record<string, string> = {};
  readonly requestId: string;
  readonly peerIp: string;
  keyId: string | undefined = undefined;
  route?: string | undefined;
  private readonly search: string;
  private parsedQuery: URLSearchParams | undefined = undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const incomingId = req.headers["x-request-id"];
    this.method = req.method ?? "GET";
    this.path = q === -1 ? raw : raw.slice(0, q);
    this.search = q === -1 ? "" : raw.slice(q + 1);
    this.requestId = adoptableRequestId(incomingId) ? incomingId : newRequestId();
    this.peerIp = normalizeIp(req.socket.remoteAddress ?? "");
  }

  /** Parsed on first use: the gateway forwards the raw query and never needs it. */
  get query(): URLSearchParams {
    this.parsedQuery ??= new URLSearchParams(this.search);
    return this.parsedQuery;
  }
}

/** Builds the context every handler receives. */
export function createContext(req: IncomingMessage, res: ServerResponse): RequestContext {
  return new Context(req, res);
}

/**
 * A caller's X-Request-Id is kept for tracing, unless it looks like a credential: request ids are
 * logged, audited and sent upstream, so a key pasted into the wrong header must not travel with them.
 */
function adoptableRequestId(id: string | string[] | undefined): id is string {
  return typeof id === "string" && REQUEST_ID.test(id) && !/kw[karc]_/i.test(id) && !/^ey[\w-]+\.ey/.test(id);
}

/** `::ffff:1.2.3.4` → `1.2.3.4`, so allowlists written in IPv4 match dual-stack sockets. */
export function normalizeIp(ip: string): string {
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}
