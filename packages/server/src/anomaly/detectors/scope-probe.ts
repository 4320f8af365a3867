import { createBoundedCache } from "@keyward/sdk/cache";
import type { DetectorFactory } from "./detector.js";

/** Agents remembered per key and window on this replica (enough to cross any sane threshold). */
const MAX_AGENTS = 1000;

/**
 * scope_probe: one key refused on agent after agent (`scope_denied` or `agent_not_found`), the
 * shape of someone mapping what a stolen key reaches.
 *
 * Formula, per key, in fixed windows of window_s: A = the distinct agents the key was refused on
 * (all replicas: each agent is added to a shared set once this replica alone has seen a quarter
 * of the threshold); alert when A ≥ threshold.
 */
export const scopeProbe: DetectorFactory = (ctx) => {
  const { rule } = ctx;
  const windowMs = rule.windowS * 1000;
  const shareAt = Math.max(1, Math.ceil(rule.threshold / 4));
  const dirty = new Set<string>();
  const seen = createBoundedCache<string, { windowStart: number; agents: Set<string>; sent: Set<string> }>({
    max: ctx.maxSubjects,
    onEvict: (keyId) => dirty.delete(keyId),
  });

  return {
    observe(o) {
      if (o.keyId === undefined || o.agent === undefined) return;
      if (o.code !== "scope_denied" && o.code !== "agent_not_found") return;
      const windowStart = Math.floor(o.at / windowMs) * windowMs;
      let s = seen.get(o.keyId);
      if (s === undefined || s.windowStart !== windowStart) {
        s = { windowStart, agents: new Set(), sent: new Set() };
        seen.set(o.keyId, s);
      }
      if (s.agents.size >= MAX_AGENTS || s.agents.has(o.agent)) return;
      s.agents.add(o.agent);
      if (s.agents.size >= shareAt) dirty.add(o.keyId);
    },
    async flush() {
      const keys = [...dirty];
      dirty.clear();
      for (const keyId of keys) {
        const s = seen.get(keyId);
        if (s === undefined) continue;
        let size = 0;
        for (const agent of s.agents) {
          if (s.sent.has(agent)) continue;
          s.sent.add(agent);
          size = (
            await ctx.shared.addMember({
              rule: rule.name,
              subject: keyId,
              windowStart: s.windowStart,
              member: agent,
              at: s.windowStart,
            })
          ).size;
        }
        if (size < rule.threshold) continue;
        ctx.report({
          keyId,
          evidence: {
            agents: size,
            sample: [...s.agents].slice(0, 10),
            threshold: rule.threshold,
            window_start: new Date(s.windowStart).toISOString(),
            window_s: rule.windowS,
          },
        });
      }
    },
  };
};
