import { randomBytes } from "node:crypto";
import {
  counterName,
  type PermitBank,
  type PermitCounter,
  type PermitGrant,
  QUOTA_IDLE_MS,
  WINDOW_SLACK_MS,
} from "./permit-bank.js";

interface Slot {
  used: number;
  epoch: string;
  /** When it is forgotten: its window's end plus slack (rate), last take plus idle time (quota). */
  expiresAt: number;
}

/**
 * The bank in one process's memory: what the primary of `keyward serve --workers N` lends its
 * workers from when there is no Redis (and the reference the Redis bank is tested against).
 *
 * Same invariant as every bank (permit-bank.ts): grants of one counter incarnation never sum past
 * `limit` minus its seed, and a give returns permits only to the incarnation that granted them.
 * Counters are forgotten once expired (a sweep every `sweepIntervalMs`, and on access), so memory
 * holds one slot per lineage active in the current window or quota idle time — lineages are keys
 * an administrator made, and a request with an unknown key never reaches the limits.
 */
export function createMemoryPermitBank(
  opts: { now?: () => number; quotaIdleMs?: number; sweepIntervalMs?: number } = {},
): PermitBank {
  const now = opts.now ?? Date.now;
  const quotaIdleMs = opts.quotaIdleMs ?? QUOTA_IDLE_MS;
  const slots = new Map<string, Slot>();
  const seeding = new Map<string, Promise<number>>();
  // Epochs of an earlier process (a restarted primary) never match this one's.
  const boot = randomBytes(6).toString("base64url");
  let seq = 0;

  const sweep = setInterval(() => {
    const t = now();
    for (const [name, s] of slots) if (s.expiresAt <= t) slots.delete(name);
  }, opts.sweepIntervalMs ?? 60_000);
  sweep.unref();

  function live(name: string): Slot | undefined {
    const s = slots.get(name);
    if (s && s.expiresAt <= now()) {
      slots.delete(name);
      return undefined;
    }
    return s;
  }

  function expiry(c: PermitCounter): number {
    return c.kind === "rate" ? c.windowStart + c.windowMs + WINDOW_SLACK_MS : now() + quotaIdleMs;
  }

  function grant(c: PermitCounter, s: Slot, want: number): PermitGrant {
    const granted = Math.max(0, Math.min(Math.floor(want), c.limit - s.used));
    s.used += granted;
    if (c.kind === "quota") s.expiresAt = expiry(c);
    return { granted, used: s.used, epoch: s.epoch };
  }

  function create(c: PermitCounter, name: string, used: number): Slot {
    const s = { used, epoch: `${boot}.${++seq}`, expiresAt: expiry(c) };
    slots.set(name, s);
    return s;
  }

  let closed = false;
  return {
    async take(c, want, seed) {
      if (closed) throw new Error("the permit bank is closed");
      const name = counterName(c);
      const s = live(name);
      if (s) return grant(c, s, want);
      if (c.kind === "rate" || !seed) return grant(c, create(c, name, 0), want);
      // One seed read per counter at a time; whoever finds the counter made meanwhile uses it.
      let p = seeding.get(name);
      if (!p) {
        p = seed().finally(() => seeding.delete(name));
        seeding.set(name, p);
      }
      const used = await p;
      return grant(c, live(name) ?? create(c, name, used), want);
    },
    async give(c, count, epoch) {
      const s = live(counterName(c));
      if (!s || s.epoch !== epoch || !(count > 0)) return;
      s.used = Math.max(0, s.used - Math.floor(count));
    },
    async close() {
      closed = true;
      clearInterval(sweep);
    },
  };
}
