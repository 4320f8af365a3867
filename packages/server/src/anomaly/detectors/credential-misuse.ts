import type { DetectorFactory } from "./detector.js";
import { createRateDetector } from "./ewma.js";

/**
 * credential_misuse: an agent reading credentials or calling through egress far above its own
 * baseline (formula in ewma.ts, per agent: x_t = its allowed credential reads and egress calls in
 * bucket t), and refresh-token reuse (anomaly-module.ts hands each reuse to `reuse`): a refresh
 * token presented twice means two holders, one of them not the owner, so one reuse alerts.
 */
export const credentialMisuse: DetectorFactory = (ctx) =>
  createRateDetector(
    ctx,
    (o) =>
      o.code === "allowed" && (o.surface === "credentials" || o.surface === "egress") && o.keyId !== undefined
        ? { subject: o.agent ?? o.owner ?? o.keyId, keyId: o.keyId }
        : undefined,
    (subject) => ({ agent: subject, kind: "credential_reads" }),
  );
