import type { DetectorFactory } from "./detector.js";
import { createWindowCounter } from "./window-counter.js";

/**
 * denial_spike: a key refused again and again (a leaked key tried against limits or scopes, a
 * broken client hammering).
 *
 * Formula, per key, in fixed windows of window_s:
 *   D = the key's denials in the window (all replicas; see window-counter.ts for the sharing bound)
 *   T = the key's requests in the window, allowed or denied, as counted by this replica
 *   alert when D ≥ threshold and D_local / T_local ≥ min_ratio (default 0.5)
 * The ratio is read on this replica's own share of the key's traffic: a load balancer gives each
 * replica the same mix, so the ratio needs no sharing, and a busy key that is mostly allowed does
 * not alert on a handful of refusals per window.
 */
export const denialSpike: DetectorFactory = (ctx) => {
  const { rule } = ctx;
  const windowMs = rule.windowS * 1000;
  const common = { windowMs, max: ctx.maxSubjects, shared: ctx.shared };
  const denials = createWindowCounter({
    ...common,
    rule: rule.name,
    shareAt: Math.max(1, Math.ceil(rule.threshold / 4)),
  });
  // Requests are counted in memory only (shareAt never reached), for the ratio.
  const requests = createWindowCounter({ ...common, rule: `${rule.name}:all`, shareAt: Number.POSITIVE_INFINITY });

  return {
    observe(o) {
      if (o.keyId === undefined) return;
      requests.add(o.keyId, o.at);
      if (o.code !== "allowed") denials.add(o.keyId, o.at);
    },
    async flush() {
      for (const f of await denials.flush()) {
        if (f.total < rule.threshold) continue;
        const all = requests.peek(f.subject);
        const local = all && all.windowStart === f.windowStart ? all.local : f.local;
        const ratio = local > 0 ? f.local / local : 1;
        if (ratio < rule.minRatio) continue;
        ctx.report({
          keyId: f.subject,
          evidence: {
            denials: f.total,
            ratio: Math.round(ratio * 1000) / 1000,
            threshold: rule.threshold,
            window_start: new Date(f.windowStart).toISOString(),
            window_s: rule.windowS,
          },
        });
      }
    },
  };
};
