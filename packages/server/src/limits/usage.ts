import type { Clock } from "../clock.js";
import type { QuotaPolicy } from "../keys/key-entry.js";
import type { Logger } from "../ops/logger.js";
import type { Db } from "../store/db.js";

const TOTAL = { start: 0, end: null } as const;
// The current day and month, computed once per period rather than per request.
const current: Partial<Record<"day" | "month", { start: number; end: number }>> = {};

/** The start and end (ms) of the quota period containing `now`, in UTC. */
export function quotaPeriod(period: QuotaPolicy["period"], now: number): { start: number; end: number | null } {
  if (period === "total") return TOTAL;
  const hit = current[period];
  if (hit && now >= hit.start && now < hit.end) return hit;
  const fresh = computePeriod(period, now);
  current[period] = fresh;
  return fresh;
}

function computePeriod(period: "day" | "month", now: number): { start: number; end: number } {
  const d = new Date(now);
  if (period === "day") {
    const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    return { start, end: start + 86_400_000 };
  }
  return {
    start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1),
    end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1),
  };
}

/** Seconds until the period ends (Retry-After), or null for a quota in total (it never resets). */
export function quotaRetryAfter(end: number | null, now: number): number | null {
  return end === null ? null : Math.max(1, Math.ceil((end - now) / 1000));
}

interface Counter {
  periodStart: number;
  /**
   * Used as of the last load or flush (what the store holds, plus what we flushed); with a shared
   * counter, the last count it reported (less what is pending here), so a local fallback starts
   * from the global figure rather than from this replica's own.
   */
  base: number;
  /** Taken here since the last flush: not yet in the store. */
  pending: number;
}

export type QuotaResult = { ok: true } | { ok: false; retryAfterS: number | null };

/** A unit of a quota just taken, and how much of it is used now (usage/quota-thresholds.ts reads these). */
export interface QuotaUse {
  lineage: string;
  period: QuotaPolicy["period"];
  periodStart: number;
  used: number;
  limit: number;
}

export interface UsageDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  flushIntervalMs?: number;
}

/**
 * Quota counters and last-used times. Counting is in memory on the request path; deltas are
 * written in batches (every `flushIntervalMs` and on shutdown) as atomic increments, so no request
 * pays for a store write and a graceful shutdown loses nothing. A crash loses at most one interval
 * of counts (documented in docs/architecture.md).
 *
 * With Redis (shared-limits.ts), Redis decides and this tracker only records what this replica
 * admitted (`recordShared`), writing it to the store as deltas exactly as above, so the store
 * keeps the durable total; `seed` gives the store's count to a Redis counter that lost its value.
 */
export function createUsageTracker(deps: UsageDeps) {
  const { db, clock, logger } = deps;
  const counters = new Map<string, Counter>();
  /** Deltas of a period that ended before they were flushed. */
  const carried: Array<[string, number, number]> = [];
  const loading = new Map<string, Promise<void>>();
  const seeding = new Map<string, Promise<number>>();
  const lastUsed = new Set<string>();
  let flushing: Promise<void> | undefined;
  let onUsed: ((use: QuotaUse) => void) | undefined;

  /** Installs a counter; pending counts of the one it replaces (an older period) are kept for the flush. */
  function replace(lineage: string, next: Counter): Counter {
    const old = counters.get(lineage);
    if (old && old.pending > 0) carried.push([lineage, old.periodStart, old.pending]);
    counters.set(lineage, next);
    return next;
  }

  async function readUsed(lineage: string, periodStart: number): Promise<number> {
    const row = (
      await db.query<{ used: number }>("SELECT used FROM quota_usage WHERE key_id = $1 AND period_start = $2", [
        lineage,
        periodStart,
      ])
    )[0];
    return Number(row?.used ?? 0);
  }

  async function load(lineage: string, periodStart: number): Promise<void> {
    const used = await readUsed(lineage, periodStart);
    const current = counters.get(lineage);
    if (current && current.periodStart === periodStart) return;
    replace(lineage, { periodStart, base: used, pending: 0 });
  }

  async function flushOnce(): Promise<void> {
    const batch = carried.splice(0);
    for (const [lineage, c] of counters) {
      if (c.pending > 0) {
        batch.push([lineage, c.periodStart, c.pending]);
        c.base += c.pending;
        c.pending = 0;
      }
    }
    const used = [...lastUsed];
    lastUsed.clear();
    if (batch.length === 0 && used.length === 0) return;
    try {
      const now = clock.now();
      await db.transaction(
        async (tx) => {
          for (const [lineage, start, delta] of batch) {
            await tx.exec(
              "INSERT INTO quota_usage (key_id, period_start, used) VALUES ($1, $2, $3) ON CONFLICT (key_id, period_start) DO UPDATE SET used = quota_usage.used + excluded.used",
              [lineage, start, delta],
            );
          }
          for (const id of used) await tx.exec("UPDATE api_keys SET last_used_at = $2 WHERE id = $1", [id, now]);
        },
        { durable: false },
      );
    } catch (err) {
      // Put the deltas back so the next flush retries them: counts are never dropped.
      for (const entry of batch) {
        const [lineage, start, delta] = entry;
        const c = counters.get(lineage);
        if (c && c.periodStart === start) {
          c.base -= delta;
          c.pending += delta;
        } else {
          carried.push(entry);
        }
      }
      for (const id of used) lastUsed.add(id);
      logger.warn({ err: (err as Error).message }, "usage flush failed; will retry");
    }
  }

  function flush(): Promise<void> {
    flushing ??= flushOnce().finally(() => {
      flushing = undefined;
    });
    return flushing;
  }

  const timer = setInterval(() => void flush(), deps.flushIntervalMs ?? 1000);
  timer.unref();

  /** Undefined when the counter for the current period is in memory; else a promise to await once. */
  function ensureLoaded(lineage: string, policy: QuotaPolicy, now: number): Promise<void> | undefined {
    const { start } = quotaPeriod(policy.period, now);
    const c = counters.get(lineage);
    if (c && c.periodStart === start) return undefined;
    let p = loading.get(lineage);
    if (!p) {
      p = load(lineage, start).finally(() => loading.delete(lineage));
      loading.set(lineage, p);
    }
    return p;
  }

  /** Takes one unit from this process's counter; call after ensureLoaded settled. */
  function take(lineage: string, policy: QuotaPolicy, now: number): QuotaResult {
    const { start, end } = quotaPeriod(policy.period, now);
    const c = counters.get(lineage);
    if (!c || c.periodStart !== start) return { ok: false, retryAfterS: 1 };
    if (c.base + c.pending >= policy.limit) return { ok: false, retryAfterS: quotaRetryAfter(end, now) };
    c.pending++;
    onUsed?.({ lineage, period: policy.period, periodStart: start, used: c.base + c.pending, limit: policy.limit });
    return { ok: true };
  }

  return {
    /**
     * Takes one unit of the lineage's quota from this process's counter, or says why not:
     * synchronous when the counter is loaded, else a promise (one store read). Rejects with store
     * errors as they are.
     */
    check(lineage: string, policy: QuotaPolicy, now: number): QuotaResult | Promise<QuotaResult> {
      const loadingNow = ensureLoaded(lineage, policy, now);
      if (loadingNow) return loadingNow.then(() => take(lineage, policy, now));
      return take(lineage, policy, now);
    },

    /**
     * What Redis answered for a request of this replica: an admitted unit is pending for the
     * store; the count becomes this counter's base, so a local fallback goes on from the global
     * figure rather than from this replica's own.
     */
    recordShared(lineage: string, periodStart: number, admitted: boolean, used: number, policy?: QuotaPolicy): void {
      let c = counters.get(lineage);
      if (!c || c.periodStart !== periodStart) c = replace(lineage, { periodStart, base: 0, pending: 0 });
      if (admitted) c.pending++;
      c.base = Math.max(c.base, used - c.pending);
      if (admitted && policy) onUsed?.({ lineage, period: policy.period, periodStart, used, limit: policy.limit });
    },

    /** Told of every unit taken, with the count after it (one listener; synchronous, on the request path). */
    onUsed(listener: (use: QuotaUse) => void): void {
      onUsed = listener;
    },

    /** The store's count once this replica's own pending counts are in it; one read per counter at a time. */
    seed(lineage: string, periodStart: number): Promise<number> {
      const id = `${lineage}\u0000${periodStart}`;
      let p = seeding.get(id);
      if (!p) {
        p = flush()
          .then(() => readUsed(lineage, periodStart))
          .finally(() => seeding.delete(id));
        seeding.set(id, p);
      }
      return p;
    },

    /** The in-process counter in two steps (load it, then take from it): what `check` does without Redis. */
    ensureLoaded,
    take,

    touch(keyId: string): void {
      lastUsed.add(keyId);
    },

    /** Forget a lineage's counter (its quota changed): the next request reloads it. */
    forget(lineage: string): void {
      const c = counters.get(lineage);
      if (c && c.pending === 0) counters.delete(lineage);
    },

    flush,

    async close(): Promise<void> {
      clearInterval(timer);
      await flush();
      if (lastUsed.size > 0 || carried.length > 0 || [...counters.values()].some((c) => c.pending > 0)) {
        await flushOnce();
      }
    },
  };
}

export type UsageTracker = ReturnType<typeof createUsageTracker>;
