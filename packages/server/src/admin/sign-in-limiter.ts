import { createBoundedCache } from "@keyward/sdk/cache";

/**
 * Bounds what guessing admin tokens at the sign-in endpoint costs us and yields: a fixed window per
 * client address, and one over all addresses so that many addresses cannot add up to unbounded
 * work. The table of addresses is the shared bounded cache: when full, the least recently seen
 * address is forgotten (an attacker rotating addresses still meets the global bound).
 */
export function createSignInLimiter(opts: {
  perAddressPerMinute: number;
  totalPerMinute: number;
  maxAddresses?: number;
}) {
  const maxAddresses = opts.maxAddresses ?? 10_000;
  const windows = createBoundedCache<string, { start: number; count: number }>({ max: maxAddresses });
  let total = { start: 0, count: 0 };

  return {
    /** Counts one attempt from `ip` at `now`; false when it is over a bound. */
    allow(ip: string, now: number): boolean {
      const start = now - (now % 60_000);
      if (total.start !== start) total = { start, count: 0 };
      let w = windows.get(ip);
      if (!w || w.start !== start) {
        w = { start, count: 0 };
        windows.set(ip, w);
      }
      if (w.count >= opts.perAddressPerMinute || total.count >= opts.totalPerMinute) return false;
      w.count++;
      total.count++;
      return true;
    },
    size: () => windows.size,
  };
}
