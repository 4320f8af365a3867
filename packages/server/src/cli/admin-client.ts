/** The admin API answered with an error body `{error: {code, message, request_id}}`. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | undefined,
  ) {
    super(message);
  }
}

/** No HTTP answer at all: refused, DNS failure, timeout. */
export class UnreachableError extends Error {
  override readonly name = "UnreachableError";
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach Keyward at ${url} (${reason})`);
  }
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface AdminClientOptions {
  /** Base URL of the Keyward server, without `/admin/v1`. */
  url: string;
  token: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

export type Query = Record<string, string | number | undefined>;

export interface AdminClient {
  request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T>;
  /** Follows `next_cursor` until the last page and answers every item in one page. */
  listAll<T>(path: string, query?: Query): Promise<Page<T>>;
}

export function createAdminClient(options: AdminClientOptions): AdminClient {
  const base = options.url.replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 30_000;

  async function request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
    const target = `${base}/admin/v1${path}${queryString(query)}`;
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await doFetch(target, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      // Name the server the user configured, not the full request URL: that is what they can fix.
      throw new UnreachableError(base, networkReason(err, timeoutMs));
    }
    const text = await res.text();
    if (!res.ok) throw toApiError(res, text);
    if (text === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(
        res.status,
        "invalid_response",
        "the server answered with something that is not JSON",
        undefined,
      );
    }
  }

  async function listAll<T>(path: string, query: Query = {}): Promise<Page<T>> {
    const items: T[] = [];
    let cursor: string | undefined;
    // A server that kept answering the same cursor would loop us forever; stop on a repeat.
    const seen = new Set<string>();
    do {
      const page = await request<Page<T>>("GET", path, undefined, { ...query, cursor });
      items.push(...page.items);
      cursor = page.next_cursor ?? undefined;
      if (cursor !== undefined && seen.has(cursor)) break;
      if (cursor !== undefined) seen.add(cursor);
    } while (cursor !== undefined);
    return { items, next_cursor: null };
  }

  return { request, listAll };
}

function queryString(query: Query | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s === "" ? "" : `?${s}`;
}

function toApiError(res: Response, text: string): ApiError {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; request_id?: unknown } };
    const e = body.error;
    if (e && typeof e.code === "string") {
      const requestId = typeof e.request_id === "string" ? e.request_id : undefined;
      return new ApiError(res.status, e.code, typeof e.message === "string" ? e.message : "", requestId);
    }
  } catch {
    // Not JSON: a proxy's error page, most likely. Fall through to a generic error.
  }
  const requestId = res.headers.get("x-request-id") ?? undefined;
  return new ApiError(res.status, `http_${res.status}`, res.statusText || "unexpected response", requestId);
}

/** undici reports "fetch failed" and hides the useful part (ECONNREFUSED, ENOTFOUND…) in `cause`. */
function networkReason(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError") return `no answer after ${Math.round(timeoutMs / 1000)}s`;
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}
