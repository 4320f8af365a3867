import type { AnomalyRule } from "../anomaly-config.js";
import type { Outcome } from "../outcomes.js";
import type { SharedWindows } from "../shared-windows.js";

/** What a detector found: the key, and the evidence an on-call engineer reads (never a secret). */
export interface Finding {
  keyId: string;
  evidence: Record<string, unknown>;
  /** One incident per (rule, dedupKey) per cooldown; default the key id. */
  dedupKey?: string;
}

export interface DetectorContext {
  rule: AnomalyRule;
  shared: SharedWindows;
  /** Hands a finding to the module (alert, then freeze by rule); never awaited on the request path. */
  report(finding: Finding): void;
  /** Most keys (or agents) a detector keeps state for; the least recently seen are forgotten. */
  maxSubjects: number;
  /** Whether a key is a canary (memory only: the key cache). */
  isCanary(keyId: string): boolean;
}

/**
 * A detector reads every outcome in memory (`observe`, synchronous, on the request path) and does
 * whatever needs the store in `flush`, which the module runs off the request path every tick.
 */
export interface Detector {
  observe(outcome: Outcome): void;
  flush(): Promise<void>;
}

export type DetectorFactory = (ctx: DetectorContext) => Detector;
