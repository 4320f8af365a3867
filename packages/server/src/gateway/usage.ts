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

interface Counter {
  periodStart: number;
  /** Used as of the last load or flush (what the store holds, plus what we flushed). */
  base: number;
  /** Taken since the last flush: not yet in the store. */
  pending: number;
}

/**
 * Quota counters and last-used times. Counting is in memory on the request path; deltas are
 * written in batches (every `flushIntervalMs` and on shutdown) as atomic increments, so no request
 * pays for a store write and a graceful shutdown loses nothing. A crash loses at most one interval
 * of counts (documented in docs/architecture.md).
 */
export function createUsageTracker(deps: { db: Db; clock: Clock; logger: Logger; flushIntervalMs?: number }) {
  const { db, clock, logger } = deps;
  const counters = new Map<string, Counter>();
  const loading = new Map<string, Promise<void>>();
  const lastUsed = new Set<string>();
  let flushing: Promise<void> | undefined;

  async function load(lineage: string, periodStart: number): Promise<void> {
    const row = (
      await db.query<{ used: number }>("SELECT used FROM quota_usage WHERE key_id = $1 AND period_start = $2", [
        lineage,
        periodStart,
      ])
    )[0];
    const current = counters.get(lineage);
    if (current && current.periodStart === periodStart) return;
    counters.set(lineage, { periodStart, base: Number(row?.used ?? 0), pending: 0 });
  }

  async function flushOnce(): Promise<void> {
    const batch: Array<[string, number, number]> = [];
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
      for (const [lineage, start, delta] of batch) {
        const c = counters.get(lineage);
        if (c && c.periodStart === start) {
          c.base -= delta;
          c.pending += delta;
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

  return {
    /** Undefined when the counter for the current period is in memory; else a promise to await once. */
    ensureLoaded(lineage: string, policy: QuotaPolicy, now: number): Promise<void> | undefined {
      const { start } = quotaPeriod(policy.period, now);
      const c = counters.get(lineage);
      if (c && c.periodStart === start) return undefined;
      if (c && c.periodStart < start) {
        // A new period: counts of the old one still pending are flushed under their own period.
        void flush().then(() => counters.get(lineage)?.periodStart === c.periodStart && counters.delete(lineage));
      }
      let p = loading.get(lineage);
      if (!p) {
        p = load(lineage, start).finally(() => loading.delete(lineage));
        loading.set(lineage, p);
      }
      return p;
    },

    /** Takes one unit; call after ensureLoaded settled. */
    take(lineage: string, policy: QuotaPolicy, now: number): { ok: true } | { ok: false; retryAfterS: number | null } {
      const { start, end } = quotaPeriod(policy.period, now);
      const c = counters.get(lineage);
      if (!c || c.periodStart !== start) return { ok: false, retryAfterS: 1 };
      if (c.base + c.pending >= policy.limit) {
        return { ok: false, retryAfterS: end === null ? null : Math.max(1, Math.ceil((end - now) / 1000)) };
      }
      c.pending++;
      return { ok: true };
    },

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
      if (lastUsed.size > 0 || [...counters.values()].some((c) => c.pending > 0)) await flushOnce();
    },
  };
}

export type UsageTracker = ReturnType<typeof createUsageTracker>;
