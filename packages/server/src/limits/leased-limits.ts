import { createBoundedCache } from "@keyward/sdk/cache";
import type { KeyEntry, QuotaPolicy } from "../keys/key-entry.js";
import { DEFAULT_LEASE_SETTINGS, type LeaseSettings, leaseSize, MIN_LEASE, maxLease } from "./lease-sizing.js";
import { type PermitBank, type PermitCounter, QUOTA_IDLE_MS } from "./permit-bank.js";
import type { RateLimiter, RateLimitResult } from "./rate-limiter.js";
import {
  LimiterUnavailableError,
  type LimitsFallback,
  type LimitsOutcome,
  MAX_REMEMBERED_WINDOWS,
  type SharedLimits,
} from "./shared-limits.js";
import { type QuotaResult, quotaPeriod, quotaRetryAfter, type UsageTracker } from "./usage.js";

/**
 * Permits of one counter (a lineage's rate window or quota period) held by this process. Requests
 * are answered from `held` in memory; a refill from the bank starts when half of the last lease is
 * used, and requests that find nothing held wait for it in arrival order.
 */
interface Lease {
  counter: PermitCounter;
  /** Largest lease of this counter (lease-sizing.ts); under MIN_LEASE the key is not leased. */
  max: number;
  held: number;
  /** The bank's count at its last grant (every process's permits), and that grant's epoch. */
  used: number;
  epoch: string | undefined;
  grantedAt: number;
  /** Size of the last lease asked for: the next refill starts when half of it is left. */
  size: number;
  /** The bank granted less than asked (the counter is spent): refused from memory until then. */
  exhaustedUntil: number;
  refilling: boolean;
  waiters: Array<{ resolve: (used: number | false) => void; reject: (err: unknown) => void }>;
  /** Requests since `since`, for the rate the next lease is sized from. */
  hits: number;
  since: number;
  ratePerMs: number;
  seed: (() => Promise<number>) | undefined;
}

/** A spent counter is asked again after this long (a process may have given permits back). */
const EXHAUSTED_RECHECK_MS = 1_000;
/**
 * Quota permits older than this are given back instead of used. The bank forgets a quota counter
 * idle for QUOTA_IDLE_MS and seeds it again from the store, which does not count leased permits:
 * permits used after that would be granted twice. Half the idle time keeps them well inside it.
 */
export const QUOTA_LEASE_MAX_AGE_MS = QUOTA_IDLE_MS / 2;

/** The seed read failed: the store's failure, propagated as it is (not the bank's). */
class SeedFailed extends Error {
  constructor(readonly original: unknown) {
    super("quota seed failed");
  }
}

const QUOTA_OK: QuotaResult = Object.freeze({ ok: true });

type LimitedKey = Pick<KeyEntry, "lineage" | "rateLimit" | "quota">;

/**
 * Shared limits from leases of permits (issue 14): the bank (Redis across replicas, the primary
 * across workers) is asked once per lease instead of once per request, and requests are answered
 * from memory. Same interface and same answers as createSharedLimits, within the overshoot bound
 * stated in lease-sizing.ts; keys whose bound would be too loose take one permit per request.
 *
 * Unused rate permits expire with their window (the bank forgets the window's counter; there is
 * nothing to return them to). Unused quota permits are given back when they age out
 * (QUOTA_LEASE_MAX_AGE_MS) and on close, so quotas stay exact across restarts. Permits held when
 * the bank stops answering are still used (the bank counted them): `rate_limit_fallback` applies
 * from the first request that finds the lease empty, so within one lease period (plus the
 * connection's command timeout while a refill waits on a slow Redis).
 */
export function createLeasedLimits(deps: {
  bank: PermitBank;
  usage: UsageTracker;
  local: RateLimiter;
  fallback: LimitsFallback;
  onUnavailable: (err: LimiterUnavailableError) => void;
  settings?: Partial<LeaseSettings>;
}): SharedLimits & { close(): Promise<void> } {
  const { bank, usage, local, fallback, onUnavailable } = deps;
  const settings: LeaseSettings = { ...DEFAULT_LEASE_SETTINGS, ...deps.settings };
  // Evicting a lease only loses its permits (the key is admitted less, never more).
  // One cache per kind, keyed by lineage: no key string to build per request.
  const rateLeases = createBoundedCache<string, Lease>({ max: MAX_REMEMBERED_WINDOWS });
  const quotaLeases = createBoundedCache<string, Lease>({ max: MAX_REMEMBERED_WINDOWS });
  const inflight = new Set<Promise<unknown>>();
  let closed = false;

  function track<T>(p: Promise<T>): Promise<T> {
    inflight.add(p);
    void p.then(
      () => inflight.delete(p),
      () => inflight.delete(p),
    );
    return p;
  }

  /** The count of the counter as this process knows it: the bank's, less what it still holds. */
  function usedNow(lease: Lease): number {
    return Math.max(0, lease.used - lease.held);
  }

  function giveBack(lease: Lease): void {
    const n = lease.held;
    lease.held = 0;
    if (n > 0 && lease.epoch !== undefined) {
      track(bank.give(lease.counter, n, lease.epoch)).catch(() => {
        // Not returned: those permits are lost for this window (admitted less, never more).
      });
    }
  }

  /** The lease of this counter; the counter and its seed are built only when a new lease starts. */
  function leaseFor(
    kind: "rate" | "quota",
    lineage: string,
    windowStart: number,
    windowMs: number,
    limit: number,
    now: number,
  ): Lease {
    const leases = kind === "rate" ? rateLeases : quotaLeases;
    const l = leases.get(lineage);
    if (l) {
      const c = l.counter;
      if (c.windowStart === windowStart && c.windowMs === windowMs && c.limit === limit) return l;
      // The limit changed mid-window: what this lease holds goes back to the counter.
      if (c.windowStart === windowStart) giveBack(l);
    }
    const counter: PermitCounter = { lineage, kind, windowStart, windowMs, limit };
    const seed =
      kind === "quota"
        ? () =>
            usage.seed(lineage, windowStart).catch((err: unknown) => {
              throw new SeedFailed(err);
            })
        : undefined;
    const fresh: Lease = {
      counter,
      max: maxLease(counter.limit, settings),
      held: 0,
      used: 0,
      epoch: undefined,
      grantedAt: now,
      size: 0,
      exhaustedUntil: 0,
      refilling: false,
      waiters: [],
      hits: 0,
      since: now,
      ratePerMs: l ? l.ratePerMs : 0,
      seed,
    };
    leases.set(lineage, fresh);
    return fresh;
  }

  function refill(lease: Lease, now: number): void {
    lease.refilling = true;
    // Requests per ms since the last refill (a burst within one ms counts as that many per ms),
    // averaged with the rate before: the next lease lasts about `leaseMs` at that rate.
    const rate = lease.hits / Math.max(1, now - lease.since);
    lease.ratePerMs = lease.ratePerMs === 0 ? rate : (lease.ratePerMs + rate) / 2;
    lease.hits = 0;
    lease.since = now;
    const want = Math.max(1, leaseSize(lease.ratePerMs, lease.waiters.length, lease.max, settings) - lease.held);
    lease.size = lease.held + want;
    track(bank.take(lease.counter, want, lease.seed)).then(
      (grant) => {
        lease.refilling = false;
        lease.used = grant.used;
        lease.epoch = grant.epoch;
        lease.grantedAt = now;
        lease.held += grant.granted;
        if (grant.granted < want) lease.exhaustedUntil = now + EXHAUSTED_RECHECK_MS;
        while (lease.held > 0 && lease.waiters.length > 0) {
          lease.held--;
          lease.waiters.shift()?.resolve(usedNow(lease));
        }
        if (lease.waiters.length > 0) {
          if (grant.granted < want || closed) for (const w of lease.waiters.splice(0)) w.resolve(false);
          else refill(lease, now);
        }
        if (closed) giveBack(lease);
      },
      (err: unknown) => {
        lease.refilling = false;
        for (const w of lease.waiters.splice(0)) w.reject(err);
      },
    );
  }

  /**
   * A refill off this request's path: issuing the Redis command costs ~0.1 ms of CPU on a busy
   * machine, which the request that crossed the half would otherwise wait for (it is its p99).
   * Requests arriving meanwhile see `refilling` and wait for this refill if the lease runs out.
   */
  function refillSoon(lease: Lease, now: number): void {
    lease.refilling = true;
    setImmediate(() => {
      if (closed) {
        lease.refilling = false;
        for (const w of lease.waiters.splice(0)) w.resolve(false);
        return;
      }
      refill(lease, now);
    });
  }

  /**
   * One permit of the lease: the counter's count with it (as this process knows it), or false when
   * refused; synchronous from memory, else a promise of the bank's answer.
   */
  function consume(lease: Lease, now: number): number | false | Promise<number | false> {
    lease.hits++;
    if (lease.max < MIN_LEASE) {
      // Not leased: one permit per request, straight from the bank (the bound is the limit).
      return bank.take(lease.counter, 1, lease.seed).then((g) => {
        lease.used = Math.max(lease.used, g.used);
        lease.epoch = g.epoch;
        return g.granted === 1 ? g.used : false;
      });
    }
    if (lease.held > 0 && lease.counter.kind === "quota" && now - lease.grantedAt > QUOTA_LEASE_MAX_AGE_MS) {
      giveBack(lease);
    }
    if (lease.held > 0) {
      lease.held--;
      const used = usedNow(lease);
      if (!lease.refilling && lease.held * 2 <= lease.size && now >= lease.exhaustedUntil && !closed) {
        refillSoon(lease, now);
      }
      return used;
    }
    if (now < lease.exhaustedUntil) return false;
    return new Promise<number | false>((resolve, reject) => {
      lease.waiters.push({ resolve, reject });
      if (!lease.refilling) refill(lease, now);
    });
  }

  async function localCheck(key: LimitedKey, now: number, rateLease: Lease | undefined): Promise<LimitsOutcome> {
    let rate: RateLimitResult | undefined;
    if (key.rateLimit) {
      // The local window starts from the bank's last count of this window, as in shared-limits.ts.
      if (rateLease && rateLease.epoch !== undefined) local.seed?.(key.lineage, key.rateLimit, now, rateLease.used);
      rate = await local.hit(key.lineage, key.rateLimit, now);
      if (!rate.allowed) return { rate, quota: undefined };
    }
    return { rate, quota: key.quota ? await usage.check(key.lineage, key.quota, now) : undefined };
  }

  function unavailable(cause: unknown): LimiterUnavailableError {
    if (cause instanceof SeedFailed) throw cause.original;
    const err = new LimiterUnavailableError(cause);
    onUnavailable(err);
    if (fallback === "closed") throw err;
    return err;
  }

  /** The rate window's answer from the counter's count (`false`: refused). */
  function rateResult(limit: number, windowEnd: number, now: number, used: number | false): RateLimitResult {
    return {
      allowed: used !== false,
      limit,
      remaining: used !== false ? Math.max(0, limit - used) : 0,
      resetS: Math.max(1, Math.ceil((windowEnd - now) / 1000)),
    };
  }

  /** What the quota's lease answered, recorded for the store and shaped for the caller. */
  function settleQuota(
    key: LimitedKey,
    q: QuotaPolicy,
    period: { start: number; end: number | null },
    lease: Lease,
    rate: RateLimitResult | undefined,
    now: number,
    used: number | false,
  ): LimitsOutcome {
    const ok = used !== false;
    usage.recordShared(key.lineage, period.start, ok, ok ? used : usedNow(lease), q);
    return { rate, quota: ok ? QUOTA_OK : { ok: false, retryAfterS: quotaRetryAfter(period.end, now) } };
  }

  // The steps below take their values as arguments: a request answered from memory allocates no
  // closure; only one that waits for the bank builds the callbacks of its promise.
  function quotaStep(
    key: LimitedKey,
    now: number,
    rate: RateLimitResult | undefined,
  ): LimitsOutcome | Promise<LimitsOutcome> {
    const q = key.quota;
    if (!q) return { rate, quota: undefined };
    const period = quotaPeriod(q.period, now);
    const windowMs = period.end === null ? Number.POSITIVE_INFINITY : period.end - period.start;
    const lease = leaseFor("quota", key.lineage, period.start, windowMs, q.limit, now);
    const answer = consume(lease, now);
    if (typeof answer !== "object") return settleQuota(key, q, period, lease, rate, now, answer);
    return answer.then(
      (used) => settleQuota(key, q, period, lease, rate, now, used),
      async (err: unknown) => {
        unavailable(err);
        return { rate, quota: await usage.check(key.lineage, q, now) };
      },
    );
  }

  function afterRate(
    key: LimitedKey,
    now: number,
    limit: number,
    windowEnd: number,
    used: number | false,
  ): LimitsOutcome | Promise<LimitsOutcome> {
    const rate = rateResult(limit, windowEnd, now, used);
    return rate.allowed ? quotaStep(key, now, rate) : { rate, quota: undefined };
  }

  return {
    /**
     * Synchronous while both leases answer from memory (the hot path: no promise, no microtask);
     * a promise only when a lease must wait for the bank.
     */
    check(key, now) {
      const policy = key.rateLimit;
      if (!policy) return quotaStep(key, now, undefined);
      const windowMs = policy.window_s * 1000;
      const windowStart = now - (now % windowMs);
      const lease = leaseFor("rate", key.lineage, windowStart, windowMs, policy.limit, now);
      const answer = consume(lease, now);
      if (typeof answer !== "object") return afterRate(key, now, policy.limit, windowStart + windowMs, answer);
      return answer.then(
        (used) => afterRate(key, now, policy.limit, windowStart + windowMs, used),
        (err: unknown) => {
          unavailable(err);
          return localCheck(key, now, lease);
        },
      );
    },

    /** Gives back every permit held (once the refills in flight have settled); later requests are refused by the bank. */
    async close() {
      closed = true;
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
      for (const lease of rateLeases.values()) giveBack(lease);
      for (const lease of quotaLeases.values()) giveBack(lease);
      await Promise.allSettled([...inflight]);
    },
  };
}
