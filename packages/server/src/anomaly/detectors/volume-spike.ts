import type { DetectorFactory } from "./detector.js";
import { createRateDetector } from "./ewma.js";

/**
 * volume_spike: a key's requests per window_s (default a minute) far above its own baseline.
 * Formula in ewma.ts: x_t ≥ threshold and x_t > mean + deviations·dev (EWMA, alpha), after 3
 * buckets of baseline. Every outcome of the key counts, allowed or denied.
 */
export const volumeSpike: DetectorFactory = (ctx) =>
  createRateDetector(
    ctx,
    (o) => (o.keyId === undefined ? undefined : { subject: o.keyId, keyId: o.keyId }),
    () => ({}),
  );
