/**
 * How big a lease may be, and how big it should be: the one place the overshoot bound is decided.
 *
 * The bound (docs/operations.md, "Shared rate limits and quotas"): the bank never grants one
 * counter more than its limit, and every permit a process answers from was granted by the bank
 * for that counter, so while the bank keeps its counters and every process's clock agrees on the
 * window, a key is admitted at most `limit` times per window, exactly. Permits can be used past
 * the bank's count only when the bank loses a counter mid-window (a Redis restart, failover or
 * eviction) while processes hold leases, or when a process whose clock runs behind still answers
 * from the previous window's lease: each process then adds at most one lease. Hence, per window:
 *
 *     admitted ≤ limit + replicas × maxLease(limit),  maxLease = ⌊fraction × limit / replicas⌋
 *              ≤ limit × (1 + fraction).
 *
 * When maxLease would be under MIN_LEASE permits, the key is not leased: each request takes one
 * permit synchronously (one bank call per request, as before leases), and the bound is the limit.
 * A process that dies holding a lease loses it (at most maxLease permits that nobody uses: the
 * key is admitted less, never more). The `local` fallback is bounded separately (operations.md).
 */
export interface LeaseSettings {
  /** Processes taking from one bank (replicas, or workers × replicas): the bound is shared between them. */
  replicas: number;
  /** Overshoot allowed at most, as a fraction of the limit (0.1: 10 %). */
  fraction: number;
  /** How long a lease is sized to last at the key's recent rate, ms; it is refilled at half. */
  leaseMs: number;
}

export const DEFAULT_LEASE_SETTINGS: LeaseSettings = { replicas: 1, fraction: 0.1, leaseMs: 100 };

/** Below this many permits a lease saves too little: the key takes one permit per request. */
export const MIN_LEASE = 2;

/** The largest lease of a counter with this limit; under MIN_LEASE: no lease, one permit per request. */
export function maxLease(limit: number, s: LeaseSettings): number {
  return Math.floor((limit * s.fraction) / Math.max(1, s.replicas));
}

/** The overshoot bound of one window with this limit, as stated above (0 for unleased keys). */
export function overshootBound(limit: number, s: LeaseSettings): number {
  const m = maxLease(limit, s);
  return m < MIN_LEASE ? 0 : Math.max(1, s.replicas) * m;
}

/**
 * A lease's size from the key's recent rate (requests per ms): enough for `leaseMs` at that rate,
 * at least what is waiting now, between 1 and `max`.
 */
export function leaseSize(ratePerMs: number, waiting: number, max: number, s: LeaseSettings): number {
  return Math.max(1, Math.min(max, Math.max(waiting, Math.ceil(ratePerMs * s.leaseMs))));
}
