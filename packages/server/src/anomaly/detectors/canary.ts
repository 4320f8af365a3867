import type { DetectorFactory } from "./detector.js";
import { networkOf } from "./network.js";

/**
 * canary: any use of a canary key, on any surface. key-usability.ts refuses a canary exactly as an
 * unknown key (invalid_key) but the denial still names the key, so an `invalid_key` outcome that
 * carries a key id is a canary's use; the key cache confirms it. Formula: one use → one critical
 * alert, one incident per key, surface and source network per cooldown.
 */
export const canary: DetectorFactory = (ctx) => ({
  observe(o) {
    if (o.code !== "invalid_key" || o.keyId === undefined || !ctx.isCanary(o.keyId)) return;
    const network = o.ip !== undefined ? networkOf(o.ip) : undefined;
    ctx.report({
      keyId: o.keyId,
      dedupKey: `${o.keyId}|${o.surface}|${network ?? "-"}`,
      evidence: {
        surface: o.surface,
        ...(o.ip !== undefined ? { address: o.ip } : {}),
        ...(network !== undefined ? { network } : {}),
        ...(o.agent !== undefined ? { agent: o.agent } : {}),
        ...(o.owner !== undefined ? { owner: o.owner } : {}),
        at: new Date(o.at).toISOString(),
      },
    });
  },
  async flush() {},
});
