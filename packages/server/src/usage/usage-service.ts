import type { OutcomeTap } from "../anomaly/outcomes.js";
import type { Clock } from "../clock.js";
import { invalidRequest } from "../errors.js";
import type { Logger } from "../ops/logger.js";
import type { UsageConfig } from "./usage-config.js";
import { createUsageCounter } from "./usage-counter.js";
import { type GroupBy, STEP_MS, type Step, type UsageStore } from "./usage-store.js";

/** The most buckets one series request may ask for (a day of minutes, 60 days of hours). */
export const MAX_BUCKETS = 1440;
/** The most groups `top` answers. */
export const MAX_TOP = 1000;
/** A series without `from` covers this many buckets before `to`. */
const DEFAULT_SPAN: Readonly<Record<Step, number>> = { m: 60, h: 24, d: 30 };

export interface SeriesItem {
  t: number;
  allowed: number;
  denied: Record<string, number>;
}

export interface GroupItem {
  id: string;
  allowed: number;
  denied: number;
  denied_by_code: Record<string, number>;
}

export interface UsageServiceDeps {
  store: UsageStore;
  clock: Clock;
  logger: Pick<Logger, "warn">;
  outcomes: OutcomeTap;
  settings: UsageConfig;
  /** Pruning of old buckets, every so often (tests call `prune()` themselves). */
  pruneIntervalMs?: number;
}

/**
 * Per-key usage (SPEC §10): counted in memory from the outcome tap, written every
 * `flush_interval_ms` as increments of minute, hour and day rows (usage-store.ts), pruned by
 * retention off the request path, and read back from the store only, so every replica answers
 * the same sums.
 */
export function createUsageService(deps: UsageServiceDeps) {
  const { store, clock, logger, settings } = deps;
  const counter = createUsageCounter({
    maxCounters: settings.max_counters,
    addressesPerKey: settings.addresses_per_key,
  });
  const unsubscribe = settings.enabled ? deps.outcomes.subscribe((o) => counter.record(o)) : () => {};
  let flushing: Promise<void> | undefined;

  async function flushOnce(): Promise<void> {
    const batch = counter.drain();
    if (batch.dropped > 0) {
      logger.warn(
        { dropped: batch.dropped, max_counters: settings.max_counters },
        "usage counters full: requests went uncounted (raise usage.max_counters or lower usage.flush_interval_ms)",
      );
    }
    if (batch.counts.length === 0 && batch.addresses.length === 0) return;
    try {
      await store.add(batch.counts, batch.addresses, settings.addresses_per_key);
    } catch (err) {
      counter.restore(batch);
      logger.warn({ err: (err as Error).message }, "usage flush failed; will retry");
    }
  }

  /** Writes what this replica counted; concurrent calls share one write. */
  function flush(): Promise<void> {
    flushing ??= flushOnce().finally(() => {
      flushing = undefined;
    });
    return flushing;
  }

  const retention: Readonly<Record<Step, number>> = {
    m: settings.minute_retention_days * STEP_MS.d,
    h: settings.hour_retention_days * STEP_MS.d,
    d: settings.day_retention_days * STEP_MS.d,
  };

  /** Drops buckets past their retention. Idempotent, so every replica may run it. */
  async function prune(): Promise<void> {
    const now = clock.now();
    for (const step of ["m", "h", "d"] as const) await store.prune(step, now - retention[step]);
    // Announced quota thresholds of periods long over (a month is at most 31 days).
    await store.pruneThresholds(now - 62 * STEP_MS.d);
  }

  const flushTimer = setInterval(() => void flush(), settings.flush_interval_ms);
  flushTimer.unref();
  const pruneTimer = setInterval(
    () => void prune().catch((err) => logger.warn({ err: (err as Error).message }, "usage pruning failed")),
    deps.pruneIntervalMs ?? 3_600_000,
  );
  pruneTimer.unref();

  return {
    flush,
    prune,

    /**
     * One key's buckets in [from, to), every bucket listed (zeros included) oldest first. `from`
     * rounds down and `to` up to the step; more than MAX_BUCKETS is refused.
     */
    async series(
      keyId: string,
      q: { step: Step; from?: number | undefined; to?: number | undefined },
    ): Promise<SeriesItem[]> {
      const size = STEP_MS[q.step];
      const to = ceilTo(q.to ?? clock.now() + 1, size);
      const from = floorTo(q.from ?? to - DEFAULT_SPAN[q.step] * size, size);
      if (from >= to) throw invalidRequest("query.from: must be before to");
      const buckets = (to - from) / size;
      if (buckets > MAX_BUCKETS) {
        throw invalidRequest(
          `query: from..to at step ${q.step === "m" ? "1m" : q.step === "h" ? "1h" : "1d"} spans ${buckets} buckets; at most ${MAX_BUCKETS} per request (narrow the range or use a larger step)`,
        );
      }
      const items = new Map<number, SeriesItem>();
      for (let t = from; t < to; t += size) items.set(t, { t, allowed: 0, denied: {} });
      for (const r of await store.series(keyId, q.step, from, to)) {
        const item = items.get(r.bucket);
        if (!item) continue;
        if (r.code === "allowed") item.allowed += r.n;
        else item.denied[r.code] = (item.denied[r.code] ?? 0) + r.n;
      }
      return [...items.values()];
    },

    /**
     * The busiest keys, agents or consumers (key owners) over [from, to), minute-aligned: whole
     * days are read from day rows, the rest from hour rows, the edges from minute rows.
     */
    async top(q: {
      by: GroupBy;
      top: number;
      from?: number | undefined;
      to?: number | undefined;
    }): Promise<{ from: number; to: number; items: GroupItem[] }> {
      const to = ceilTo(q.to ?? clock.now() + 1, STEP_MS.m);
      const from = floorTo(q.from ?? to - STEP_MS.d, STEP_MS.m);
      if (from >= to) throw invalidRequest("query.from: must be before to");
      const groups = new Map<string, GroupItem>();
      for (const piece of pieces(from, to, ["d", "h", "m"])) {
        for (const r of await store.grouped(q.by, piece.step, piece.from, piece.to)) {
          let g = groups.get(r.id);
          if (!g) {
            g = { id: r.id, allowed: 0, denied: 0, denied_by_code: {} };
            groups.set(r.id, g);
          }
          if (r.code === "allowed") g.allowed += r.n;
          else {
            g.denied += r.n;
            g.denied_by_code[r.code] = (g.denied_by_code[r.code] ?? 0) + r.n;
          }
        }
      }
      const items = [...groups.values()]
        .sort((a, b) => b.allowed + b.denied - (a.allowed + a.denied) || (a.id < b.id ? -1 : 1))
        .slice(0, q.top);
      return { from, to, items };
    },

    addresses: (keyId: string) => store.addresses(keyId),

    async close(): Promise<void> {
      clearInterval(flushTimer);
      clearInterval(pruneTimer);
      unsubscribe();
      await flush();
      // Counted while the last flush was running.
      if (counter.size > 0) await flushOnce();
    },
  };
}

export type UsageService = ReturnType<typeof createUsageService>;

const floorTo = (t: number, size: number) => t - (((t % size) + size) % size);
const ceilTo = (t: number, size: number) => floorTo(t + size - 1, size);

/** [from, to) split into the coarsest buckets that fit whole, finer ones at the edges. */
export function pieces(
  from: number,
  to: number,
  steps: readonly Step[],
): Array<{ step: Step; from: number; to: number }> {
  const [step, ...finer] = steps;
  if (step === undefined || from >= to) return [];
  if (finer.length === 0) return [{ step, from, to }];
  const size = STEP_MS[step];
  const a = ceilTo(from, size);
  const b = floorTo(to, size);
  if (a >= b) return pieces(from, to, finer);
  return [...pieces(from, a, finer), { step, from: a, to: b }, ...pieces(b, to, finer)];
}
