import { createBoundedCache } from "@keyward/sdk/cache";
import type { SharedWindows } from "../shared-windows.js";

interface Slot {
  windowStart: number;
  /** What this replica counted in the window. */
  local: number;
  /** Counted here and not yet added to the shared window. */
  pending: number;
  /** Once true for this window, every count goes to the shared window. */
  shared: boolean;
  /** The shared total as last read (this replica's counts included). */
  total: number;
}

/**
 * Per-subject counts in fixed windows (`floor(at / windowMs)`), in memory, shared with the other
 * replicas only for subjects near a threshold: a subject's counts go to the store once this
 * replica alone has counted `shareAt` in the window (a quarter of the threshold), and from then
 * on every tick. So traffic spread over R replicas is seen whole once it reaches
 * threshold + (R − 1)·(shareAt − 1) in the window, whichever replicas carry it (docs/operations.md).
 */
export function createWindowCounter(opts: {
  rule: string;
  windowMs: number;
  shareAt: number;
  max: number;
  shared: SharedWindows;
}) {
  // Subjects with counts to share: always a subset of `slots` (an evicted subject leaves both), so
  // a flood of new subjects between two ticks is bounded by `max` here too.
  const dirty = new Set<string>();
  const slots = createBoundedCache<string, Slot>({ max: opts.max, onEvict: (subject) => dirty.delete(subject) });

  return {
    /** Counts one event for `subject` at `at`; returns the slot (memory only). */
    add(subject: string, at: number, n = 1): Slot {
      const windowStart = Math.floor(at / opts.windowMs) * opts.windowMs;
      let slot = slots.get(subject);
      if (slot === undefined || slot.windowStart !== windowStart) {
        slot = { windowStart, local: 0, pending: 0, shared: false, total: 0 };
        slots.set(subject, slot);
      }
      slot.local += n;
      slot.pending += n;
      if (slot.shared || slot.local >= opts.shareAt) {
        slot.shared = true;
        dirty.add(subject);
      }
      return slot;
    },

    /** The slot of `subject` now, without counting. */
    peek(subject: string): Slot | undefined {
      return slots.get(subject);
    },

    /** Adds what is pending to the shared windows; returns each flushed subject with its total. */
    async flush(): Promise<Array<{ subject: string; windowStart: number; total: number; local: number }>> {
      if (dirty.size === 0) return [];
      const batch: Array<{ subject: string; slot: Slot; n: number }> = [];
      for (const subject of dirty) {
        const slot = slots.get(subject);
        if (slot && slot.pending > 0) batch.push({ subject, slot, n: slot.pending });
      }
      dirty.clear();
      for (const b of batch) b.slot.pending -= b.n;
      let totals: number[];
      try {
        totals = await opts.shared.add(
          batch.map((b) => ({ rule: opts.rule, subject: b.subject, windowStart: b.slot.windowStart, n: b.n })),
        );
      } catch (err) {
        // Put the counts back so the next tick adds them: a store outage delays, never loses them.
        for (const b of batch) {
          b.slot.pending += b.n;
          dirty.add(b.subject);
        }
        throw err;
      }
      return batch.map((b, i) => {
        b.slot.total = Math.max(b.slot.total, totals[i] ?? 0);
        return { subject: b.subject, windowStart: b.slot.windowStart, total: b.slot.total, local: b.slot.local };
      });
    },
  };
}

export type WindowCounter = ReturnType<typeof createWindowCounter>;
