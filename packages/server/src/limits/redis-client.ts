import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import type { Logger } from "../ops/logger.js";

/**
 * The Redis connection of the rate limiter and quota counters.
 *
 * Every option here serves one rule: a counting command is sent at most once. No offline queue (a
 * command issued while disconnected fails at once instead of waiting to be sent later),
 * `maxRetriesPerRequest: 0` and `autoResendUnfulfilledCommands: false` (commands in flight when
 * the connection drops are failed, never replayed after the reconnect: they may have run). A
 * short `commandTimeout` bounds how long a request waits on a Redis that stopped answering. The
 * connection itself is retried forever in the background, so limits recover without a restart.
 */
export interface LimitsRedis {
  redis: Redis;
  /** Resolves true once connected, false at the first connection error or after `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>;
  close(): void;
}

export function connectLimitsRedis(opts: {
  url: string;
  logger: Logger;
  commandTimeoutMs?: number;
  onStatus?: (up: boolean) => void;
}): LimitsRedis {
  const { logger, onStatus } = opts;
  const redis = new Redis(opts.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    reconnectOnError: null,
    commandTimeout: opts.commandTimeoutMs ?? 500,
    connectTimeout: 2000,
    keepAlive: 10_000,
    // Reconnect quickly at first, then once a second: Redis is back within a second of returning.
    retryStrategy: (times) => Math.min(times * 100, 1000),
    // Commands issued in one tick share one write: fewer syscalls under load, same semantics.
    enableAutoPipelining: true,
    lazyConnect: false,
    connectionName: "keyward-limits",
  });

  // Log transitions, not every failed attempt: a Redis that is down would otherwise flood the log.
  // The URL can carry a password, so only the error's own message is logged.
  let up = false;
  let reported = false;
  redis.on("ready", () => {
    up = true;
    reported = false;
    onStatus?.(true);
    logger.info("redis (rate limits, quotas) connected");
  });
  redis.on("error", (err: Error) => {
    if (reported) return;
    reported = true;
    logger.warn({ err: err.message }, "redis (rate limits, quotas) unavailable; retrying in the background");
  });
  redis.on("close", () => {
    if (!up) return;
    up = false;
    onStatus?.(false);
  });

  return {
    redis,
    ready(timeoutMs) {
      if (redis.status === "ready") return Promise.resolve(true);
      return new Promise((resolve) => {
        const done = (ok: boolean) => {
          clearTimeout(timer);
          redis.off("ready", onReady);
          redis.off("error", onError);
          resolve(ok);
        };
        const onReady = () => done(true);
        const onError = () => done(false);
        const timer = setTimeout(() => done(false), timeoutMs);
        redis.once("ready", onReady);
        redis.once("error", onError);
      });
    },
    close() {
      redis.disconnect(false);
    },
  };
}

/** A Lua script run by its SHA-1, loaded on first use and again after a Redis restart. */
export interface Script {
  sha: string;
  lua: string;
}

export function script(lua: string): Script {
  return { sha: createHash("sha1").update(lua).digest("hex"), lua };
}

/**
 * EVALSHA, then EVAL on NOSCRIPT (a restarted Redis has an empty script cache). Sending the
 * script again is safe: NOSCRIPT means it did not run.
 */
export function runScript(
  redis: Redis,
  s: Script,
  keys: readonly string[],
  args: ReadonlyArray<string | number>,
): Promise<unknown> {
  return redis.evalsha(s.sha, keys.length, ...keys, ...args).catch((err: unknown) => {
    if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
    return redis.eval(s.lua, keys.length, ...keys, ...args);
  });
}
