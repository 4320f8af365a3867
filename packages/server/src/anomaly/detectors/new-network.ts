import { createBoundedCache } from "@keyward/sdk/cache";
import type { DetectorFactory } from "./detector.js";
import { networkOf } from "./network.js";

/** Networks remembered per key on this replica (the store holds every one learned). */
const KNOWN_PER_KEY = 64;
/** The learning period's start is stored as a member no network can be named. */
const FIRST = "*";
/** Networks first seen between two ticks that wait to be learned; a flood keeps the first ones. */
const MAX_PENDING = 10_000;

interface Pending {
  keyId: string;
  network: string;
  ip: string;
  at: number;
}

/**
 * new_network: a key used from a network it was never used from, once its learning period is over.
 *
 * Formula, per key: N(a) = /24 of an IPv4 address, /48 of an IPv6 one. The key's learning starts
 * at its first request seen by any replica (t0). A request from address a at time t alerts when
 * N(a) was never seen for the key and t − t0 ≥ learning_s. Networks are learned in the store
 * (one row per key and network, inserted by exactly one replica), so a network one replica learned
 * is known to all; this replica remembers the last 64 per key to skip the store for them.
 */
export const newNetwork: DetectorFactory = (ctx) => {
  const { rule } = ctx;
  const known = createBoundedCache<string, Set<string>>({ max: ctx.maxSubjects });
  const firstSeen = createBoundedCache<string, number>({ max: ctx.maxSubjects });
  let pending: Pending[] = [];

  return {
    observe(o) {
      if (o.keyId === undefined || o.ip === undefined) return;
      const network = networkOf(o.ip);
      if (network === undefined) return;
      let nets = known.get(o.keyId);
      if (nets === undefined) {
        nets = new Set();
        known.set(o.keyId, nets);
      }
      if (nets.has(network)) return;
      if (nets.size >= KNOWN_PER_KEY) nets.clear();
      nets.add(network);
      // Bounded: a flood of addresses between two ticks keeps the first ones.
      if (pending.length < MAX_PENDING) pending.push({ keyId: o.keyId, network, ip: o.ip, at: o.at });
    },
    async flush() {
      const batch = pending;
      pending = [];
      for (let i = 0; i < batch.length; i++) {
        try {
          await learn(batch[i]!);
        } catch (err) {
          // Put back what was not learned, so a store outage delays the learning, never loses it.
          pending = [...batch.slice(i), ...pending].slice(0, MAX_PENDING);
          throw err;
        }
      }
    },
  };

  async function learn(p: Pending): Promise<void> {
    let t0 = firstSeen.get(p.keyId);
    if (t0 === undefined) {
      const first = await ctx.shared.addMember({
        rule: rule.name,
        subject: p.keyId,
        windowStart: 0,
        member: FIRST,
        at: p.at,
      });
      t0 = first.firstSeen;
      firstSeen.set(p.keyId, t0);
    }
    const net = await ctx.shared.addMember({
      rule: rule.name,
      subject: p.keyId,
      windowStart: 0,
      member: p.network,
      at: p.at,
    });
    if (!net.added || p.at - t0 < rule.learningS * 1000) return;
    ctx.report({
      keyId: p.keyId,
      dedupKey: `${p.keyId}|${p.network}`,
      evidence: {
        network: p.network,
        address: p.ip,
        known_networks: net.size - 2,
        learning_since: new Date(t0).toISOString(),
        learning_s: rule.learningS,
      },
    });
  }
};
