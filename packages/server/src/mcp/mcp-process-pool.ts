import { createHash } from "node:crypto";

/** What the pool keeps per (server, user): a connected upstream it can stop. */
export interface PooledUpstream {
  /** Graceful stop (idle, evicted, credentials changed, shutdown). */
  close(): Promise<void>;
  /** Immediate stop (a hung call). */
  kill(): void;
}

export interface UpstreamLease<U> {
  upstream: U;
  /** The call is over; the upstream stays for the next one (idle reaping starts when none is left). */
  release(): void;
  /** The upstream is broken (timed out): stop it now; the next call starts a new one. */
  discard(): void;
}

/** At the cap, with every upstream busy: a clean, retryable refusal, never a wait. */
export class PoolFullError extends Error {
  constructor() {
    super("too many upstream MCP processes are busy on this server; try again shortly");
    this.name = "PoolFullError";
  }
}

export interface PoolOptions<U extends PooledUpstream> {
  /** Most upstreams alive at once (starting, in use or idle). */
  max: number;
  idleTimeoutMs: number;
  /**
   * Starts one upstream with this user's credential values. `onGone` must be called when it stops
   * by itself (a process that crashed or exited): the pool then forgets it.
   */
  connect(server: string, user: string, values: Readonly<Record<string, string>>, onGone: () => void): Promise<U>;
  now?: () => number;
}

interface Entry<U> {
  key: string;
  user: string;
  fingerprint: string;
  ready: Promise<U>;
  upstream: U | undefined;
  inflight: number;
  lastUsed: number;
  idleTimer: NodeJS.Timeout | undefined;
  /** Retired: no new calls (credentials changed); stopped once the last call in flight ends. */
  state: "live" | "retired" | "gone";
}

/**
 * One upstream per (server, user), started on first use (concurrent first calls share one start),
 * reused while that user's credentials stay the same, stopped when idle, evicted least recently
 * used at the cap, and forgotten when it dies so the next call starts a fresh one.
 */
export function createUpstreamPool<U extends PooledUpstream>(opts: PoolOptions<U>) {
  const now = opts.now ?? Date.now;
  const current = new Map<string, Entry<U>>();
  const live = new Set<Entry<U>>();
  let closed = false;

  function stop(e: Entry<U>, how: "close" | "kill"): Promise<void> {
    if (e.state === "gone") return Promise.resolve();
    e.state = "gone";
    live.delete(e);
    if (current.get(e.key) === e) current.delete(e.key);
    if (e.idleTimer) clearTimeout(e.idleTimer);
    // Callers `void` this promise: it must never reject (an unhandled rejection ends the server).
    return e.ready.then((u) => (how === "kill" ? u.kill() : u.close())).catch(() => {});
  }

  function retire(e: Entry<U>): void {
    if (current.get(e.key) === e) current.delete(e.key);
    if (e.state !== "live") return;
    e.state = "retired";
    if (e.inflight === 0) void stop(e, "close");
  }

  function makeRoom(): void {
    if (live.size < opts.max) return;
    let lru: Entry<U> | undefined;
    for (const e of live) {
      if (e.inflight === 0 && e.upstream !== undefined && (!lru || e.lastUsed < lru.lastUsed)) lru = e;
    }
    if (!lru) throw new PoolFullError();
    void stop(lru, "close");
  }

  function start(server: string, user: string, key: string, values: Readonly<Record<string, string>>): Entry<U> {
    makeRoom();
    const e: Entry<U> = {
      key,
      user,
      fingerprint: fingerprint(values),
      ready: undefined as unknown as Promise<U>,
      upstream: undefined,
      inflight: 0,
      lastUsed: now(),
      idleTimer: undefined,
      state: "live",
    };
    e.ready = opts
      .connect(server, user, values, () => void stop(e, "close"))
      .then(
        (u) => {
          e.upstream = u;
          return u;
        },
        (err: unknown) => {
          void stop(e, "close");
          throw err;
        },
      );
    // Waiters get the error through their own await; this one only keeps it from going unhandled.
    e.ready.catch(() => {});
    current.set(key, e);
    live.add(e);
    return e;
  }

  function scheduleIdle(e: Entry<U>): void {
    if (e.idleTimer) clearTimeout(e.idleTimer);
    e.idleTimer = setTimeout(() => {
      if (e.inflight === 0 && e.state === "live") void stop(e, "close");
    }, opts.idleTimeoutMs);
    e.idleTimer.unref();
  }

  return {
    /**
     * An upstream for this user built with exactly these credential values: a running one whose
     * values differ (changed since it started) is retired and a new one started.
     * Throws PoolFullError at the cap, or the upstream's start error.
     */
    async acquire(server: string, user: string, values: Readonly<Record<string, string>>): Promise<UpstreamLease<U>> {
      if (closed) throw new Error("the MCP gateway is shutting down");
      const key = `${server}\u0000${user}`;
      let e = current.get(key);
      if (e && e.fingerprint !== fingerprint(values)) {
        retire(e);
        e = undefined;
      }
      e ??= start(server, user, key, values);
      const entry = e;
      entry.inflight++;
      if (entry.idleTimer) clearTimeout(entry.idleTimer);
      entry.idleTimer = undefined;
      let done = false;
      const finish = (discard: boolean) => {
        if (done) return;
        done = true;
        entry.inflight--;
        entry.lastUsed = now();
        if (discard) void stop(entry, "kill");
        else if (entry.state === "retired" && entry.inflight === 0) void stop(entry, "close");
        else if (entry.state === "live" && entry.inflight === 0) scheduleIdle(entry);
      };
      let upstream: U;
      try {
        upstream = await entry.ready;
      } catch (err) {
        finish(false);
        throw err;
      }
      return { upstream, release: () => finish(false), discard: () => finish(true) };
    },

    /** This user's credentials changed: their upstreams take no new calls and stop when idle. */
    retireUser(user: string): void {
      for (const e of [...current.values()]) if (e.user === user) retire(e);
    },

    /** Upstreams alive now (starting, busy, idle or finishing their last call). */
    get size(): number {
      return live.size;
    },

    async close(): Promise<void> {
      closed = true;
      await Promise.all([...live].map((e) => stop(e, "close")));
    },
  };
}

export type UpstreamPool<U extends PooledUpstream> = ReturnType<typeof createUpstreamPool<U>>;

function fingerprint(values: Readonly<Record<string, string>>): string {
  const sorted = Object.keys(values)
    .sort()
    .map((k) => [k, values[k]]);
  return createHash("sha256").update(JSON.stringify(sorted)).digest("base64url");
}
