/**
 * Where a process gets permits when limits are shared: Redis across replicas, the primary process
 * across the workers of one `keyward serve --workers N` (when there is no Redis). A process does
 * not ask the bank per request: it leases a batch of permits per key lineage and window and
 * answers from the lease in memory (limits/leased-limits.ts), so the bank sees one call per batch.
 *
 * Invariant of every bank: the permits it grants for one (lineage, window) never sum past `limit`
 * minus what was counted there before, and permits given back are granted again at most once.
 * The overshoot of the whole system is therefore only what the leasing processes lose track of
 * (none while they live; at most one lease each when one dies: its permits are neither used nor
 * returned, so they are lost, never granted twice).
 */

/** One counter of the bank: a rate-limit window, or a quota period (`windowMs` = period length). */
export interface PermitCounter {
  /** The key lineage (survives rotation: the same limits apply to the rotated key). */
  lineage: string;
  kind: "rate" | "quota";
  /** Start of the window or period, epoch ms (windows are aligned to the epoch). */
  windowStart: number;
  /**
   * Length of the window or period, ms (`Infinity` for a quota in total). A rate counter is
   * forgotten once its window ended; a quota counter after it has been idle for the bank's idle
   * time (an hour), then seeded again from the store.
   */
  windowMs: number;
  /** The key's limit for the window or period. */
  limit: number;
}

export interface PermitGrant {
  /** Permits granted now, 0 ≤ granted ≤ want. 0 means the counter is exhausted. */
  granted: number;
  /** The counter after this grant (permits granted so far in the window, by every process). */
  used: number;
  /**
   * Which incarnation of the counter granted them (a counter forgotten and created again — its
   * window over, a Redis restart, an idle quota reseeded from the store — has another). `give`
   * takes it back so permits return only to the counter that granted them: a return to a
   * recreated counter would be granted a second time. A bank that cannot tell incarnations apart
   * (Redis: one key per counter) returns one constant; its gives stay within the bound anyway
   * (redis-permit-bank.ts).
   */
  epoch: string;
}

export interface PermitBank {
  /**
   * Takes up to `want` permits of `counter`. A quota counter the bank has not seen in this period
   * is seeded from `seed()` (the store's count: quotas stay exact across restarts) before the take.
   * Rejects when the bank cannot answer (Redis down, the primary gone): the caller applies
   * `rate_limit_fallback`.
   */
  take(counter: PermitCounter, want: number, seed?: () => Promise<number>): Promise<PermitGrant>;
  /**
   * Gives back `count` permits leased but not used, to the incarnation `epoch` of the counter only
   * (ignored when the counter was forgotten or recreated since). Never lowers it below zero.
   */
  give(counter: PermitCounter, count: number, epoch: string): Promise<void>;
  close(): Promise<void>;
}

/** A rate counter is kept this long past its window's end, for a process whose clock runs behind. */
export const WINDOW_SLACK_MS = 5_000;
/** A quota counter nobody took from for this long is forgotten (then seeded again from the store). */
export const QUOTA_IDLE_MS = 3_600_000;

/** The name of a counter, unique per lineage, kind and window (Redis key suffix, map key). */
export function counterName(c: PermitCounter): string {
  return c.kind === "rate" ? `{${c.lineage}}:r:${c.windowMs}:${c.windowStart}` : `{${c.lineage}}:q:${c.windowStart}`;
}
