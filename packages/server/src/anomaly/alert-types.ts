/** How bad an alert is (SPEC §10). */
export type AlertSeverity = "info" | "warning" | "critical";
export type AlertStatus = "open" | "acked";

/** One stored alert, as the admin API shows it (times in epoch ms here, RFC 3339 on the wire). */
export interface Alert {
  id: string;
  rule: string;
  severity: AlertSeverity;
  status: AlertStatus;
  keyId: string | null;
  createdAt: number;
  evidence: Record<string, unknown>;
}

export interface RaiseInput {
  /** The rule's name (`canary`, a configured rule's `name`, `leak_report`, …). */
  rule: string;
  severity: AlertSeverity;
  keyId?: string;
  /** Counts, addresses, window: ids and names only, never a secret. */
  evidence: Record<string, unknown>;
  /**
   * What makes two raises the same incident (default: the key id, or the rule alone). Within the
   * rule's cooldown a second raise with the same (rule, dedupKey) is dropped, on every replica.
   */
  dedupKey?: string;
  /** Seconds one incident stays one alert (default DEFAULT_COOLDOWN_S). */
  cooldownS?: number;
}

export const DEFAULT_COOLDOWN_S = 3600;

/** What other domains (leak reports, detectors) call to raise an alert. */
export interface AlertRaiser {
  /** Stores the alert and announces it (metrics, `alert.created`); undefined when deduplicated. */
  raise(input: RaiseInput): Promise<Alert | undefined>;
}
