import type { Outcome } from "../anomaly/outcomes.js";
import type { AddressDelta, CountDelta } from "./usage-store.js";

interface Seen {
  firstSeen: number;
  lastSeen: number;
  n: number;
}

/**
 * This replica's counts since the last flush, on the request path: one map lookup per outcome,
 * memory only. Bounded: past `maxCounters` distinct counters new ones are dropped (and reported
 * by `drain`), and each key remembers at most `addressesPerKey` addresses (the least recent goes).
 * Outcomes without a key are not counted: usage is per key.
 */
export function createUsageCounter(limits: { maxCounters: number; addressesPerKey: number }) {
  let counts = new Map<string, CountDelta>();
  let addresses = new Map<string, Map<string, Seen>>();
  let dropped = 0;

  function address(keyId: string, ip: string, at: number): void {
    let seen = addresses.get(keyId);
    if (!seen) {
      seen = new Map();
      addresses.set(keyId, seen);
    }
    const hit = seen.get(ip);
    if (hit) {
      hit.n++;
      if (at > hit.lastSeen) hit.lastSeen = at;
      return;
    }
    if (seen.size >= limits.addressesPerKey) {
      let oldest: string | undefined;
      let oldestAt = Number.POSITIVE_INFINITY;
      for (const [k, v] of seen) {
        if (v.lastSeen < oldestAt) {
          oldest = k;
          oldestAt = v.lastSeen;
        }
      }
      if (oldest !== undefined) seen.delete(oldest);
    }
    seen.set(ip, { firstSeen: at, lastSeen: at, n: 1 });
  }

  return {
    record(o: Outcome): void {
      const { keyId } = o;
      if (keyId === undefined) return;
      const minute = o.at - (o.at % 60_000);
      const agent = o.agent ?? "";
      const id = `${keyId}\0${agent}\0${o.code}\0${minute}`;
      const c = counts.get(id);
      if (c) c.n++;
      else if (counts.size >= limits.maxCounters) {
        dropped++;
        return;
      } else counts.set(id, { keyId, agent, owner: o.owner ?? "", code: o.code, minute, n: 1 });
      if (o.ip) address(keyId, o.ip, o.at);
    },

    /** Everything counted since the last drain, and how many outcomes the bound dropped. */
    drain(): { counts: CountDelta[]; addresses: AddressDelta[]; dropped: number } {
      const out = {
        counts: [...counts.values()],
        addresses: [...addresses].flatMap(([keyId, seen]) => [...seen].map(([ip, s]) => ({ keyId, ip, ...s }))),
        dropped,
      };
      counts = new Map();
      addresses = new Map();
      dropped = 0;
      return out;
    },

    /** Puts back what a failed flush drained, so the next flush writes it. */
    restore(batch: { counts: readonly CountDelta[]; addresses: readonly AddressDelta[] }): void {
      for (const c of batch.counts) {
        const id = `${c.keyId}\0${c.agent}\0${c.code}\0${c.minute}`;
        const mine = counts.get(id);
        if (mine) mine.n += c.n;
        else counts.set(id, { ...c });
      }
      for (const a of batch.addresses) {
        const seen = addresses.get(a.keyId) ?? new Map<string, Seen>();
        addresses.set(a.keyId, seen);
        const mine = seen.get(a.ip);
        if (mine) {
          mine.n += a.n;
          mine.firstSeen = Math.min(mine.firstSeen, a.firstSeen);
        } else seen.set(a.ip, { firstSeen: a.firstSeen, lastSeen: a.lastSeen, n: a.n });
      }
    },

    get size(): number {
      return counts.size;
    },
  };
}

export type UsageCounter = ReturnType<typeof createUsageCounter>;
