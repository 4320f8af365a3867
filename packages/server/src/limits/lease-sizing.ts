/**
 * How big a lease may be, and how big it should be: the one place the overshoot bound is decided.
 *
 * The bound (docs/operations.md, "Permit leases"). The bank never grants one counter more than its
 * limit, and a process answers a request only from a lease of the counter of that request's
 * window (by its own clock) or quota period. So, with R processes sharing the bank and
 * maxLease = ⌊fraction × limit / R⌋:
 *
 * - While the bank keeps its counters and the clocks agree, a key is admitted at most `limit`
 *   times per window and per quota period: exactly, no overshoot.
 * - A process whose clock runs behind answers from its lease of the window that just ended while
 *   the others count the next one: at most its one lease more. In any window (by any clock):
 *       admitted ≤ limit + R × maxLease ≤ limit × (1 + fraction).
 * - A quota counter the bank lost (a Redis restart, an eviction) is seeded again from the store,
 *   which does not count permits leased but unused: at most one lease per process more in the
 *   period, the same bound (plus the usage not yet written to the store, ≤ 1 s of it per process,
 *   as without leases). A rate window the bank lost starts again from zero, as without leases.
 *
 * When maxLease is under MIN_LEASE, the key is not leased: each request takes one permit from the
 * bank (one call per request, as before leases) and the bound is the limit. A process that dies
 * holding a lease loses it: at most maxLease permits nobody uses (admitted less, never more).
 * The `local` fallback is bounded separately (R × limit in a window, operations.md).
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
