import { createBoundedCache } from "@keyward/sdk/cache";
import type { Outcome } from "../outcomes.js";
import type { DetectorContext, Finding } from "./detector.js";
import { createWindowCounter } from "./window-counter.js";

interface Baseline {
  /** The bucket being counted now. */
  bucket: number;
  mean: number;
  dev: number;
  /** Buckets folded into the baseline so far (the baseline speaks only after WARMUP). */
  seen: number;
  /** The count of the current bucket as last known (shared total when shared, else local). */
  current: number;
}

/** Buckets a subject must have been seen for before a spike can be called. */
export const WARMUP = 3;
/** Empty buckets folded in at most, after a subject was quiet (the mean decays towards 0). */
const MAX_GAP = 60;

/**
 * Rate over a subject's own baseline, shared by volume_spike (per key) and credential_misuse
 * (per agent's credential reads and egress).
 *
 * Formula, with x_t the subject's count in bucket t (window_s long, all replicas once near the
 * floor) and alpha the smoothing:
 *   mean_t = alpha·x_t + (1 − alpha)·mean_{t−1}
 *   dev_t  = alpha·|x_t − mean_{t−1}| + (1 − alpha)·dev_{t−1}      (mean absolute deviation)
 *   alert in bucket t when x_t ≥ threshold (the floor) and x_t > mean_{t−1} + deviations·dev_{t−1},
 *   after WARMUP buckets of baseline. Quiet buckets count as 0 (up to 60 of them).
 */
export function createRateDetector(
  ctx: DetectorContext,
  select: (o: Outcome) => { subject: string; keyId: string } | undefined,
  evidenceOf: (subject: string) => Record<string, unknown>,
) {
  const { rule } = ctx;
  const windowMs = rule.windowS * 1000;
  const baselines = createBoundedCache<string, Baseline>({ max: ctx.maxSubjects });
  const lastKey = createBoundedCache<string, string>({ max: ctx.maxSubjects });
  const counter = createWindowCounter({
    rule: rule.name,
    windowMs,
    shareAt: Math.max(1, Math.ceil(rule.threshold / 4)),
    max: ctx.maxSubjects,
    shared: ctx.shared,
  });

  function fold(b: Baseline, x: number): void {
    const deviation = Math.abs(x - b.mean);
    b.mean = b.seen === 0 ? x : rule.alpha * x + (1 - rule.alpha) * b.mean;
    b.dev = b.seen === 0 ? 0 : rule.alpha * deviation + (1 - rule.alpha) * b.dev;
    b.seen++;
  }

  function spike(b: Baseline, x: number): Finding["evidence"] | undefined {
    if (b.seen < WARMUP || x < rule.threshold) return undefined;
    const limit = b.mean + rule.deviations * b.dev;
    if (x <= limit) return undefined;
    return {
      count: x,
      mean: Math.round(b.mean * 100) / 100,
      deviation: Math.round(b.dev * 100) / 100,
      limit: Math.round(limit * 100) / 100,
      floor: rule.threshold,
      window_s: rule.windowS,
    };
  }

  return {
    observe(o: Outcome): void {
      const s = select(o);
      if (s === undefined) return;
      const bucket = Math.floor(o.at / windowMs);
      let b = baselines.get(s.subject);
      if (b === undefined) {
        b = { bucket, mean: 0, dev: 0, seen: 0, current: 0 };
        baselines.set(s.subject, b);
      } else if (bucket > b.bucket) {
        fold(b, b.current);
        for (let gap = Math.min(bucket - b.bucket - 1, MAX_GAP); gap > 0; gap--) fold(b, 0);
        b.bucket = bucket;
        b.current = 0;
      }
      lastKey.set(s.subject, s.keyId);
      const slot = counter.add(s.subject, o.at);
      if (slot.windowStart === bucket * windowMs)
        b.current = Math.max(b.current, slot.shared ? slot.total + slot.pending : slot.local);
    },
    async flush(): Promise<void> {
      for (const f of await counter.flush()) {
        const b = baselines.get(f.subject);
        if (b === undefined || f.windowStart !== b.bucket * windowMs) continue;
        b.current = Math.max(b.current, f.total);
        const evidence = spike(b, b.current);
        const keyId = lastKey.get(f.subject);
        if (evidence && keyId !== undefined) {
          ctx.report({ keyId, dedupKey: f.subject, evidence: { ...evidenceOf(f.subject), ...evidence } });
        }
      }
    },
  };
}
