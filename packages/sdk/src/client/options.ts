import { type ResolvedLimits, type ResponseLimits, resolveLimits } from "../http/limits.js";
import { nodeFetch } from "./node-fetch.js";
import { workloadTokenSource } from "./workload-token.js";

/**
 * Time as the client sees it: the wall clock and real timers by default; tests pass a manual
 * clock so nothing really sleeps.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export type FetchLike = typeof globalThis.fetch;

/** Options of {@link Keyward.connect}. `url` is required, and exactly one of `token` and `workloadToken`. */
export interface ConnectOptions {
  /** Keyward's base URL, e.g. `https://keyward.internal:8080` (a path prefix is kept). */
  url: string | URL;
  /**
   * The agent's own key (`kwk_…`) or an access token whose `sub` is the agent. A function is
   * called before each request, so a short-lived access token can be renewed by the caller.
   */
  token?: string | (() => string | Promise<string>);
  /**
   * Instead of `token`: the agent's platform identity, with no static secret. A function reading a
   * JWT that Keyward's `trusted_workloads` map to this agent (a Kubernetes projected
   * service-account token, a CI job's OIDC token). The client exchanges it at `/oauth/token`
   * (RFC 7523 jwt-bearer) for a short-lived access token, uses that for every request and the
   * event stream, and exchanges again, calling this function again, after 80 % of the token's
   * life: a file the platform rotated is read anew. Giving both `token` and `workloadToken` is a
   * `TypeError`.
   *
   * @example
   * ```ts
   * import { readFile } from "node:fs/promises";
   * const kw = await Keyward.connect({
   *   url: process.env.KEYWARD_URL!,
   *   workloadToken: () => readFile("/var/run/secrets/keyward/token", "utf8"),
   * });
   * ```
   */
  workloadToken?: () => string | Promise<string>;
  /**
   * How long the last good values are served while Keyward is unreachable, in ms after the last
   * successful contact (a response or a heartbeat). Then `get` throws `StaleCredentialError`.
   * A quiet connection is not an unreachable one: after half of it without a word (Keyward sends
   * a heartbeat every 15 s) the client asks Keyward itself. Default 24 h; at least 1 s.
   */
  maxStale?: number;
  /**
   * A fetch implementation for every request, e.g. the global `fetch` with an undici dispatcher
   * for a proxy or custom TLS. Default: a lean transport on node:http / node:https.
   */
  fetch?: FetchLike;
  /**
   * An encrypted copy of the values on disk (AES-256-GCM, mode 0600, replaced atomically after each
   * fetch that changed something), read only when Keyward is unreachable at `connect` and only if
   * younger than `maxStale`. Off by default; requires `cacheKey`.
   *
   * The trade-off: the agent can start while Keyward is down, but the secrets then also exist on
   * disk (whoever has the file and the key has them), and a credential revoked while the agent was
   * down stays usable from the cache until Keyward is reachable again or `maxStale` passes.
   */
  cacheFile?: string;
  /** 32 bytes (or their base64), e.g. from an environment variable; AES-256-GCM key of `cacheFile`. */
  cacheKey?: Uint8Array | string;
  /** Polling period while the event stream is not connected. Default 15 s. */
  pollIntervalMs?: number;
  /** A stream silent for this long (no event, no heartbeat) is treated as dead. Default 45 s. */
  heartbeatTimeoutMs?: number;
  /** First retry delay after a failure; doubles per failure, with full jitter. Default 500 ms. */
  backoffBaseMs?: number;
  /** Upper bound of the retry delay. Default 30 s. */
  backoffCapMs?: number;
  /** Time limit of one request (not of the event stream). Default 10 s. */
  requestTimeoutMs?: number;
  /**
   * How much of an answer the client reads before it stops (`response_too_large`): response bodies
   * in bytes, event-stream lines and events in characters. The defaults (16 MiB for
   * `/v1/credentials`, 1 MiB for other answers, 64 Ki per event-stream line, 1 Mi and 1,000 lines
   * per event) are far above what Keyward sends; see {@link ResponseLimits}.
   */
  limits?: ResponseLimits;
  /** Aborting it cancels `connect` and later closes the client. */
  signal?: AbortSignal;
  /** For tests: the clock and timers. */
  clock?: Clock;
  /** For tests: a uniform random number in [0, 1) (the backoff jitter). */
  random?: () => number;
}

export interface ResolvedOptions {
  url: URL;
  token: () => string | Promise<string>;
  maxStale: number;
  fetch: FetchLike;
  cache: { file: string; key: Buffer } | undefined;
  pollIntervalMs: number;
  heartbeatTimeoutMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  requestTimeoutMs: number;
  limits: ResolvedLimits;
  signal: AbortSignal | undefined;
  clock: Clock;
  random: () => number;
}

/**
 * Timers are not unref'd: like a database pool, an open client keeps the process alive (its event
 * stream's socket does anyway; polling must not behave differently) until `close()`.
 */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

const HOUR = 3_600_000;

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`Keyward.connect: ${name} must be a positive number of milliseconds`);
  }
  return value;
}

/**
 * Below this, the questions a quiet connection triggers (at half and three quarters of maxStale)
 * would come faster than a round trip to a loaded server, and a heartbeat-sized pause would read
 * as an outage.
 */
const MIN_MAX_STALE_MS = 1000;

function atLeast(name: string, min: number, value: number): number {
  if (value < min) throw new TypeError(`Keyward.connect: ${name} must be at least ${min} milliseconds`);
  return value;
}

function cacheKeyBytes(key: Uint8Array | string): Buffer {
  const bytes = typeof key === "string" ? Buffer.from(key, "base64") : Buffer.from(key);
  if (bytes.length !== 32) throw new TypeError("Keyward.connect: cacheKey must be 32 bytes (or their base64)");
  return bytes;
}

/** Validates the options once, so a typo fails at start with the setting's name. */
export function resolveOptions(o: ConnectOptions): ResolvedOptions {
  if (o === null || typeof o !== "object") throw new TypeError("Keyward.connect: options are required");
  let url: URL;
  try {
    url = new URL(String(o.url));
  } catch {
    throw new TypeError("Keyward.connect: url must be an absolute http(s) URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError("Keyward.connect: url must be an absolute http(s) URL");
  }
  // Relative request paths resolve under the base, so a path prefix (a reverse proxy) is kept.
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  url.search = "";
  url.hash = "";

  const { token, workloadToken } = o;
  if (token !== undefined && workloadToken !== undefined) {
    throw new TypeError("Keyward.connect: token and workloadToken exclude each other; give one");
  }
  if (workloadToken !== undefined) {
    if (typeof workloadToken !== "function") {
      throw new TypeError("Keyward.connect: workloadToken must be a function returning the platform token");
    }
  } else if (!(typeof token === "function" || (typeof token === "string" && token.length > 0))) {
    throw new TypeError("Keyward.connect: token must be a non-empty string or a function (or give workloadToken)");
  }
  if ((o.cacheFile === undefined) !== (o.cacheKey === undefined)) {
    throw new TypeError("Keyward.connect: cacheFile and cacheKey go together");
  }
  const fetchImpl = o.fetch ?? nodeFetch;
  if (typeof fetchImpl !== "function") throw new TypeError("Keyward.connect: fetch must be a function");

  const clock = o.clock ?? realClock;
  const limits = resolveLimits(o.limits);
  const requestTimeoutMs = positive("requestTimeoutMs", o.requestTimeoutMs, 10_000);
  const tokenOf =
    workloadToken !== undefined
      ? workloadTokenSource({
          url,
          read: workloadToken,
          fetch: fetchImpl,
          clock,
          timeoutMs: requestTimeoutMs,
          maxBytes: limits.responseBytes,
        })
      : typeof token === "function"
        ? token
        : () => token as string;

  return {
    url,
    token: tokenOf,
    maxStale: atLeast("maxStale", MIN_MAX_STALE_MS, positive("maxStale", o.maxStale, 24 * HOUR)),
    fetch: fetchImpl,
    cache: o.cacheFile === undefined ? undefined : { file: o.cacheFile, key: cacheKeyBytes(o.cacheKey!) },
    pollIntervalMs: positive("pollIntervalMs", o.pollIntervalMs, 15_000),
    heartbeatTimeoutMs: positive("heartbeatTimeoutMs", o.heartbeatTimeoutMs, 45_000),
    backoffBaseMs: positive("backoffBaseMs", o.backoffBaseMs, 500),
    backoffCapMs: positive("backoffCapMs", o.backoffCapMs, 30_000),
    requestTimeoutMs,
    limits,
    signal: o.signal,
    clock,
    random: o.random ?? Math.random,
  };
}
